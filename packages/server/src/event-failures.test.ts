import type { FastifyBaseLogger } from 'fastify'
import { describe, expect, it } from 'vitest'
import { EventFailures, LOGGED_NAME_LENGTH, loggedName } from './event-failures.js'

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

  it("logs the middleware's names, the client's, cut and quoted; the rest counted", () => {
    const { lines, log } = logger()
    const failures = new EventFailures(log)
    const long = 'x"); each was fine '.padEnd(256, 'y')
    failures.middleware(long, new Error('a bug in the middleware'))
    for (let i = 0; i < 10; i++) failures.middleware(`${'z'.repeat(100)}${i}`, new Error('again'))
    failures.close()
    const shown = `${long.slice(0, LOGGED_NAME_LENGTH)}…+${256 - LOGGED_NAME_LENGTH}`
    expect(lines[0]!.obj).toMatchObject({ event: shown, events: [shown], count: 1 })
    // In the message, as a JSON string: its quote cannot close the line's own.
    expect(lines[0]!.msg).toContain(`; the first: its err, for ${JSON.stringify(shown)});`)
    // Names that differ past the cut are one name in the list; `moreEvents` is not set for them.
    const zs = `${'z'.repeat(LOGGED_NAME_LENGTH)}…+37`
    expect(lines[1]!.obj).toMatchObject({ event: zs, events: [zs], count: 10 })
    expect(lines[1]!.obj).not.toHaveProperty('moreEvents')
  })
})

describe('loggedName', () => {
  it('keeps a name up to LOGGED_NAME_LENGTH, and cuts one past it with how much was left out', () => {
    const max = 'n'.repeat(LOGGED_NAME_LENGTH)
    expect(loggedName('chat')).toBe('chat')
    expect(loggedName(max)).toBe(max)
    expect(loggedName(`${max}!`)).toBe(`${max}…+1`)
  })

  it('never cuts a surrogate pair in half', () => {
    const name = `${'n'.repeat(LOGGED_NAME_LENGTH - 1)}😀tail`
    expect(loggedName(name)).toBe(`${'n'.repeat(LOGGED_NAME_LENGTH - 1)}…+6`)
  })
})
