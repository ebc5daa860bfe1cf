import { afterEach, describe, expect, it, vi } from 'vitest'
import { ExpiringSet } from './expiring-set.js'

describe('ExpiringSet', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('keeps a key for its lifetime from its last add, and forgets one deleted', () => {
    vi.useFakeTimers({ toFake: ['Date', 'performance'] })
    const set = new ExpiringSet(1000, 10)
    set.add('a')
    set.add('b')
    vi.advanceTimersByTime(600)
    set.add('a')
    set.delete('b')
    expect(set.has('b')).toBe(false)
    vi.advanceTimersByTime(399)
    expect(set.has('a')).toBe(true)
    vi.advanceTimersByTime(600)
    expect(set.has('a')).toBe(true)
    vi.advanceTimersByTime(1)
    expect(set.has('a')).toBe(false)
    expect(set.has('never')).toBe(false)
  })

  it('keeps the newest `max` keys, a key added again counted as new, and drops the expired as it adds', () => {
    vi.useFakeTimers({ toFake: ['Date', 'performance'] })
    const set = new ExpiringSet(1000, 3)
    for (const key of ['a', 'b', 'c']) set.add(key)
    set.add('a')
    set.add('d')
    expect(['a', 'b', 'c', 'd'].filter((key) => set.has(key))).toEqual(['a', 'c', 'd'])
    vi.advanceTimersByTime(1000)
    set.add('e')
    expect(set.size).toBe(1)
    expect(set.has('e')).toBe(true)
  })

  it('refuses a lifetime or a bound it cannot keep, with PARLEY_INVALID_ARGUMENT, rather than remember nothing', () => {
    for (const [lifetime, max] of [
      [Number.NaN, 10],
      [-1, 10],
      ['1000', 10],
      [1000, Number.NaN],
      [1000, 0],
      [1000, 2.5],
      [1000, Number.POSITIVE_INFINITY],
    ] as const) {
      expect(() => new ExpiringSet(lifetime as number, max), `${String(lifetime)}, ${max}`).toThrow(
        expect.objectContaining({ name: 'RangeError', code: 'PARLEY_INVALID_ARGUMENT' }),
      )
    }
    // Forever is a lifetime: the bound alone forgets.
    const forever = new ExpiringSet(Number.POSITIVE_INFINITY, 1)
    forever.add('a')
    expect(forever.has('a')).toBe(true)
  })
})
