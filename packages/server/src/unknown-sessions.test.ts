import type { FastifyBaseLogger } from 'fastify'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { UnknownSessions } from './unknown-sessions.js'

function logger() {
  const lines: { obj: Record<string, unknown>; msg: string }[] = []
  const log = { warn: (obj: Record<string, unknown>, msg: string) => lines.push({ obj, msg }) }
  return { lines, log: log as unknown as FastifyBaseLogger }
}

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

describe('UnknownSessions', () => {
  it('logs at most one line per 10 s, with the count since the last one, and the rest at close', () => {
    const { lines, log } = logger()
    const unknown = new UnknownSessions(log)
    unknown.record('V1StGXR8_Z5jdHi6B-myT', 'request')
    for (let i = 0; i < 5; i++) unknown.record('Uakgb_J5m9g-0JDMbcJqL', 'resume')
    expect(lines).toHaveLength(1)
    vi.advanceTimersByTime(10_000)
    expect(lines).toHaveLength(2)
    unknown.record('Uakgb_J5m9g-0JDMbcJqL', 'request')
    unknown.close()
    expect(lines.map((l) => l.obj.count)).toEqual([1, 5, 1])
    expect(unknown.total).toBe(7)
  })

  it("names the causes: a balancer without affinity or routing, or a routing adapter's store away", () => {
    const { lines, log } = logger()
    new UnknownSessions(log).record('V1StGXR8_Z5jdHi6B-myT', 'request')
    // A node with @parley/redis meets these while Redis is away: not a balancer to fix.
    expect(lines[0]?.msg).toMatch(/load balancer .* without affinity and without an adapter that routes them/)
    expect(lines[0]?.msg).toMatch(/its store away \(see the adapter's own warnings\)/)
  })

  it('shows a six-character prefix of one sid, never the sid, nor what a sid cannot hold', () => {
    const { lines, log } = logger()
    new UnknownSessions(log).record('V1StGXR8_Z5jdHi6B-myT', 'request')
    new UnknownSessions(log).record('a\nb"c<de', 'request')
    expect(lines.map((l) => l.obj.example)).toEqual(['V1StGX…', 'a?b?c?…'])
    expect(JSON.stringify(lines)).not.toContain('V1StGXR')
  })
})
