import type { FastifyBaseLogger } from 'fastify'
import { describe, expect, it } from 'vitest'
import { EventFailures } from './event-failures.js'

function logger() {
  const lines: { obj: Record<string, unknown>; msg: string }[] = []
  const log = { error: (obj: Record<string, unknown>, msg: string) => lines.push({ obj, msg }) }
  return { lines, log: log as unknown as FastifyBaseLogger }
}

describe('EventFailures', () => {
  it('keeps a burst for each of 64 handled events; the names past them share one', () => {
    const { lines, log } = logger()
    const failures = new EventFailures(log)
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 70; i++) failures.handler(`event-${i}`, new Error(`a bug in event-${i}`))
    }
    // The first of each of 64 events at once, and the first of the rest.
    expect(lines).toHaveLength(65)
    expect(lines[64]!.obj).toMatchObject({ event: 'event-64', events: ['event-64'], count: 1 })
    failures.close()
    // At close: the second failure of each of the 64, and the eleven others since the first of theirs.
    expect(lines).toHaveLength(130)
    expect(lines[129]!.obj).toMatchObject({
      event: 'event-65',
      events: ['event-65', 'event-66', 'event-67', 'event-68', 'event-69', 'event-64'],
      count: 11,
      total: 12,
    })
    expect(lines[129]!.msg).toContain('event handler failed for 11 event(s) since the last such line')
  })
})
