import type { FastifyBaseLogger } from 'fastify'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { RestartClaims } from './restart-claims.js'

function logger() {
  const lines: { obj: Record<string, unknown>; msg: string }[] = []
  const log = { info: (obj: Record<string, unknown>, msg: string) => lines.push({ obj, msg }) }
  return { lines, log: log as unknown as FastifyBaseLogger }
}

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

describe('RestartClaims', () => {
  it('logs the first claim at once, then one line per 10 s with the count since, not one per claim', () => {
    const { lines, log } = logger()
    const claims = new RestartClaims(log)
    for (let i = 0; i < 10_000; i++) claims.record()
    expect(lines.map((l) => l.obj)).toEqual([{ count: 1, total: 1 }])
    expect(lines[0]!.msg).toContain('1 session(s) claimed after a restart')
    vi.advanceTimersByTime(10_000)
    expect(lines.map((l) => l.obj)).toEqual([
      { count: 1, total: 1 },
      { count: 9_999, total: 10_000 },
    ])
  })

  it('stops its timer once the claims stop, and logs the next one at once', () => {
    const { lines, log } = logger()
    const claims = new RestartClaims(log)
    claims.record()
    vi.advanceTimersByTime(10_000)
    expect(vi.getTimerCount()).toBe(0)
    vi.advanceTimersByTime(60_000)
    claims.record()
    expect(lines.map((l) => l.obj)).toEqual([
      { count: 1, total: 1 },
      { count: 1, total: 2 },
    ])
  })

  it('logs at close what it had not logged yet, and keeps no timer', () => {
    const { lines, log } = logger()
    const claims = new RestartClaims(log)
    claims.record()
    claims.record()
    claims.record()
    claims.close()
    expect(lines.map((l) => l.obj)).toEqual([
      { count: 1, total: 1 },
      { count: 2, total: 3 },
    ])
    expect(vi.getTimerCount()).toBe(0)
    claims.close()
    expect(lines).toHaveLength(2)
  })
})
