// The own broadcasts a node gave up on while sockets were positioned for a handover: nothing
// comes back while Redis is away or stalled, so what is remembered must stay bounded.
import { describe, expect, it } from 'vitest'
import { GivenUp, MAX_GIVEN_UP } from '../src/given-up.js'

describe('own broadcasts given up', () => {
  it('are remembered until one sent later comes back', () => {
    const given = new GivenUp()
    given.add(2)
    given.add(4)
    expect(given.back(1)).toBe(false)
    expect(given.back(2)).toBe(true)
    expect(given.size).toBe(1)
    // 3 never came back, 5 does: 4 never will.
    expect(given.back(5)).toBe(false)
    expect(given.size).toBe(0)
  })

  it('stay bounded through an outage that brings none back, and still count as given up', () => {
    const given = new GivenUp()
    const total = MAX_GIVEN_UP * 3
    for (let q = 1; q <= total; q++) given.add(q)
    expect(given.size).toBeLessThanOrEqual(MAX_GIVEN_UP)
    // The oldest, folded away, would still not reach a positioned socket twice.
    expect(given.back(1)).toBe(true)
    expect(given.back(total)).toBe(true)
    expect(given.back(total + 1)).toBe(false)
    expect(given.size).toBe(0)
  })
})
