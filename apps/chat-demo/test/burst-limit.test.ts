import { describe, expect, it } from 'vitest'
import { BurstLimit } from '../src/burst-limit.js'

describe('BurstLimit', () => {
  /** A limit of 3 at once, then one per 250 ms, on a clock the test moves. */
  function limit() {
    const clock = { now: 1_000_000 }
    return { clock, burstLimit: new BurstLimit(3, 250, () => clock.now), bucket: BurstLimit.empty() }
  }

  it('lets a burst through at once, then one per gap', () => {
    const { clock, burstLimit, bucket } = limit()
    expect([1, 2, 3, 4].map(() => burstLimit.take(bucket))).toEqual([true, true, true, false])
    clock.now += 249
    expect(burstLimit.take(bucket)).toBe(false)
    clock.now += 1
    expect([1, 2].map(() => burstLimit.take(bucket))).toEqual([true, false])
  })

  it('fills up again while idle, never past the burst', () => {
    const { clock, burstLimit, bucket } = limit()
    for (let i = 0; i < 3; i++) burstLimit.take(bucket)
    clock.now += 60_000
    expect([1, 2, 3, 4].map(() => burstLimit.take(bucket))).toEqual([true, true, true, false])
  })

  it('lets through at most the burst and one per gap, however often it is asked', () => {
    const { clock, burstLimit, bucket } = limit()
    let taken = 0
    for (let ms = 0; ms < 10_000; ms += 10) {
      clock.now += 10
      if (burstLimit.take(bucket)) taken++
    }
    // The burst at the first ask (at 10 ms), and one for each whole gap after it.
    expect(taken).toBe(3 + Math.floor((10_000 - 10) / 250))
  })
})
