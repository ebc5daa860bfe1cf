// A node asked again a broadcast with acks it had already (see asked-here.ts) must not ask its
// sockets a second time, and gives its count again instead; what it keeps for that is bounded
// in time and in size.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { ASKED_KEEP_MS, AskedHere, MAX_ASKED_KEPT } from '../src/asked-here.js'

describe('the asks of broadcasts with acks a node took', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('takes an ask once, and gives its count, once given, to the asks after it', () => {
    const asked = new AskedHere(5000)
    expect(asked.take('a', '1')).toEqual({ first: true })
    // Asked again before its count was given: the count goes once given, as for the first.
    expect(asked.take('a', '1')).toEqual({ first: false, count: undefined })
    asked.counted('a', '1', 3)
    expect(asked.take('a', '1')).toEqual({ first: false, count: 3 })
    // Another request, or the same id from another node, is another ask.
    expect(asked.take('a', '2')).toEqual({ first: true })
    expect(asked.take('b', '1')).toEqual({ first: true })
  })

  it('lets an ask go past ASKED_KEEP_MS, or three requestTimeouts when longer', () => {
    vi.useFakeTimers({ toFake: ['performance'] })
    const short = new AskedHere(5000)
    const long = new AskedHere(ASKED_KEEP_MS)
    short.take('a', '1')
    long.take('a', '1')
    vi.advanceTimersByTime(ASKED_KEEP_MS - 1)
    expect(short.take('a', '1').first).toBe(false)
    vi.advanceTimersByTime(1)
    expect(short.take('a', '1').first).toBe(true)
    expect(long.take('a', '1').first).toBe(false)
    vi.advanceTimersByTime(2 * ASKED_KEEP_MS)
    expect(long.take('a', '1').first).toBe(true)
  })

  it('keeps MAX_ASKED_KEPT asks at most, letting the oldest go first', () => {
    const asked = new AskedHere(5000)
    for (let i = 0; i <= MAX_ASKED_KEPT; i++) asked.take('a', String(i))
    expect(asked.take('a', String(MAX_ASKED_KEPT)).first).toBe(false)
    expect(asked.take('a', '1').first).toBe(false)
    expect(asked.take('a', '0').first).toBe(true)
  })
})
