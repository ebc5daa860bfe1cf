import type { FastifyBaseLogger } from 'fastify'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { RestartClaims } from './restart-claims.js'

function logger() {
  const lines: { obj: Record<string, unknown>; msg: string }[] = []
  const log = { info: (obj: Record<string, unknown>, msg: string) => lines.push({ obj, msg }) }
  /** `[count, total]` of each line. */
  const counts = () => lines.map(({ obj }) => [obj.count, obj.total])
  return { lines, counts, log: log as unknown as FastifyBaseLogger }
}

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

describe('RestartClaims', () => {
  it('logs the first claim at once, then one line per 10 s with the count since, not one per claim', () => {
    const { lines, counts, log } = logger()
    const claims = new RestartClaims(log)
    for (let i = 0; i < 10_000; i++) claims.record()
    expect(counts()).toEqual([[1, 1]])
    expect(lines[0]!.msg).toContain('1 session(s) claimed after a restart')
    vi.advanceTimersByTime(10_000)
    expect(counts()).toEqual([
      [1, 1],
      [9_999, 10_000],
    ])
  })

  it('stops its timer once the claims stop, and logs the next one at once', () => {
    const { counts, log } = logger()
    const claims = new RestartClaims(log)
    claims.record()
    vi.advanceTimersByTime(10_000)
    expect(vi.getTimerCount()).toBe(0)
    vi.advanceTimersByTime(60_000)
    claims.record()
    expect(counts()).toEqual([
      [1, 1],
      [1, 2],
    ])
  })

  it('logs at close what it had not logged yet, and keeps no timer', () => {
    const { lines, counts, log } = logger()
    const claims = new RestartClaims(log)
    claims.record()
    claims.record()
    claims.record()
    claims.close()
    expect(counts()).toEqual([
      [1, 1],
      [2, 3],
    ])
    expect(vi.getTimerCount()).toBe(0)
    claims.close()
    expect(lines).toHaveLength(2)
  })
})
