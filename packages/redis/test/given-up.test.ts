// The own broadcasts a node gave up on that may still come back: nothing comes back while Redis
// is away or stalled, so what is remembered must stay bounded.
import { describe, expect, it } from 'vitest'
import { GivenUp, MAX_GIVEN_UP } from '../src/given-up.js'

describe('own broadcasts given up', () => {
  it('are remembered, with the positionings that took them, until one sent later comes back', () => {
    const given = new GivenUp()
    given.add(2, 1)
    given.add(4, 3)
    expect(given.takenBy(1)).toBeUndefined()
    expect(given.takenBy(2)).toBe(1)
    expect(given.takenBy(4)).toBe(3)
    expect(given.back(1)).toBe(false)
    expect(given.back(2)).toBe(true)
    expect(given.size).toBe(1)
    // 3 never came back, 5 does: 4 never will.
    expect(given.back(5)).toBe(true)
    expect(given.size).toBe(0)
    expect(given.takenBy(4)).toBeUndefined()
  })

  it('are owed only to sockets positioned after they were given up', () => {
    const given = new GivenUp()
    given.add(2, 1)
    given.add(4, 3)
    // Positionings 1 to 3 took 4 when it was given up, and 1 took 2 as well.
    expect(given.owes(1)).toBe(false)
    expect(given.owes(3)).toBe(true)
    // The first each owes: 2 to positionings past 1, 4 to those past 3 alone.
    expect([given.firstOwed(1), given.firstOwed(2), given.firstOwed(4)]).toEqual([undefined, 2, 2])
    given.back(2)
    expect(given.firstOwed(4)).toBe(4)
    expect(given.owes(3)).toBe(false)
    expect(given.owes(4)).toBe(true)
  })

  it('stay bounded through an outage that brings none back, and still count as taken', () => {
    const given = new GivenUp()
    const total = MAX_GIVEN_UP * 3
    for (let q = 1; q <= total; q++) given.add(q, q)
    expect(given.size).toBeLessThanOrEqual(MAX_GIVEN_UP)
    // The oldest, folded away, would still not reach a socket positioned then twice, and reach
    // one positioned after every one folded away.
    const floor = total - given.size
    expect(given.takenBy(1)).toBe(floor)
    expect(given.takenBy(total)).toBe(total)
    expect(given.back(total)).toBe(true)
    expect(given.takenBy(total + 1)).toBeUndefined()
    expect(given.size).toBe(0)
  })
})
