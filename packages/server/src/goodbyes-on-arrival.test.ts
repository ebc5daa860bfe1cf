import { describe, expect, it } from 'vitest'
import { GoodbyesOnArrival } from './goodbyes-on-arrival.js'

describe('GoodbyesOnArrival', () => {
  it('keeps a goodbye only for a session being claimed, and hands it to the end of its takeover', () => {
    const arrivals = new GoodbyesOnArrival()
    expect(arrivals.keep('s')).toBe(false)
    const over = arrivals.begin('s')
    expect(arrivals.keep('s')).toBe(true)
    expect(over()).toBe(true)
    // Once only, and forgotten after.
    expect(over()).toBe(false)
    expect(arrivals.keep('s')).toBe(false)
  })

  it('waits for the last of two resumes claiming one session', () => {
    const arrivals = new GoodbyesOnArrival()
    const first = arrivals.begin('s')
    const second = arrivals.begin('s')
    arrivals.keep('s')
    expect(first()).toBe(false)
    expect(second()).toBe(true)
  })

  it('says nothing at the end of a takeover no goodbye came for', () => {
    const arrivals = new GoodbyesOnArrival()
    const over = arrivals.begin('s')
    arrivals.begin('t')
    arrivals.keep('t')
    expect(over()).toBe(false)
  })
})
