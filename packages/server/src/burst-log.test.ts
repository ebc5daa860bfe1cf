import type { FastifyBaseLogger } from 'fastify'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { BurstLog, MAX_LISTED_EVENTS } from './burst-log.js'

function logger() {
  const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = []
  const at = (level: string) => (obj: Record<string, unknown>, msg: string) => lines.push({ level, obj, msg })
  const log = { info: at('info'), warn: at('warn') }
  /** `[count, total]` of each line. */
  const counts = () => lines.map(({ obj }) => [obj.count, obj.total])
  return { lines, counts, log: log as unknown as FastifyBaseLogger }
}

const claimed = (count: number) => `${count} session(s) claimed`

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

describe('BurstLog', () => {
  it('logs the first at once, then one line per 10 s with the count since, not one per record', () => {
    const { lines, counts, log } = logger()
    const burst = new BurstLog(log, 'info', claimed)
    for (let i = 0; i < 10_000; i++) burst.record()
    expect(counts()).toEqual([[1, 1]])
    expect(lines[0]!.msg).toBe('parley: 1 session(s) claimed')
    vi.advanceTimersByTime(10_000)
    expect(counts()).toEqual([
      [1, 1],
      [9_999, 10_000],
    ])
    expect(lines[1]!.msg).toBe('parley: 9999 session(s) claimed')
  })

  it('logs at its level, with the details of the first it counts as an example', () => {
    const { lines, log } = logger()
    const burst = new BurstLog(log, 'warn', claimed)
    burst.record({ socket: 'a' })
    burst.record({ socket: 'b' })
    burst.record({ socket: 'c' })
    vi.advanceTimersByTime(10_000)
    expect(lines).toEqual([
      { level: 'warn', obj: { socket: 'a', count: 1, total: 1 }, msg: 'parley: 1 session(s) claimed' },
      { level: 'warn', obj: { socket: 'b', count: 2, total: 3 }, msg: 'parley: 2 session(s) claimed' },
    ])
  })

  it('stops its timer once the records stop, and logs the next one at once', () => {
    const { counts, log } = logger()
    const burst = new BurstLog(log, 'info', claimed)
    burst.record()
    vi.advanceTimersByTime(10_000)
    expect(vi.getTimerCount()).toBe(0)
    vi.advanceTimersByTime(60_000)
    burst.record()
    expect(counts()).toEqual([
      [1, 1],
      [1, 2],
    ])
  })

  it('logs what comes after close at the end of its turn, not after everyMs, which the process would not wait for', async () => {
    vi.useRealTimers()
    const { lines, counts, log } = logger()
    const burst = new BurstLog(log, 'warn', claimed)
    burst.record({ socket: 'a' })
    burst.close()
    // Such as every session ended at shutdown with a disconnect listener that throws: one line.
    burst.record({ socket: 'b' })
    burst.record({ socket: 'c' })
    burst.record({ socket: 'd' })
    await new Promise((resolve) => setImmediate(resolve))
    // A later one (a claim the store answered after the close): its own line, as soon.
    burst.record({ socket: 'e' })
    await new Promise((resolve) => setImmediate(resolve))
    expect(counts()).toEqual([
      [1, 1],
      [3, 4],
      [1, 5],
    ])
    expect(lines.map(({ obj }) => obj.socket)).toEqual(['a', 'b', 'e'])
  })

  it('logs at close what it had not logged yet, and keeps no timer', () => {
    const { lines, counts, log } = logger()
    const burst = new BurstLog(log, 'info', claimed)
    burst.record()
    burst.record()
    burst.record()
    burst.close()
    expect(counts()).toEqual([
      [1, 1],
      [2, 3],
    ])
    expect(vi.getTimerCount()).toBe(0)
    burst.close()
    expect(lines).toHaveLength(2)
  })

  it('lists the events of what a line counts, at most MAX_LISTED_EVENTS, each once', () => {
    const { lines, log } = logger()
    const burst = new BurstLog(log, 'warn', claimed)
    burst.record({ event: 'a' }, 'a')
    for (let i = 0; i < 30; i++) burst.record({ event: `e${i % 15}` }, `e${i % 15}`)
    burst.record()
    vi.advanceTimersByTime(10_000)
    burst.record({ event: 'b' }, 'b')
    burst.close()
    expect(lines.map(({ obj }) => obj)).toEqual([
      { event: 'a', events: ['a'], count: 1, total: 1 },
      {
        event: 'e0',
        events: Array.from({ length: MAX_LISTED_EVENTS }, (_, i) => `e${i}`),
        moreEvents: true,
        count: 31,
        total: 32,
      },
      { event: 'b', events: ['b'], count: 1, total: 33 },
    ])
  })
})
