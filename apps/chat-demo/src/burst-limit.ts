import { monotonicNow } from './monotonic.js'

/**
 * One action per `gapMs` on average, with up to `burst` of them at once: a token bucket that
 * holds `burst` tokens and gains one every `gapMs`. Its state is one plain number (`Burst`) that
 * the caller keeps. Unlike a least gap between two actions, it lets a short run through (a
 * person who starts typing, sends and types on) and still bounds a flood. No timers; timed on
 * `monotonicNow`, which a step of the wall clock does not move.
 */
export interface Burst {
  /**
   * When the actions let through so far are paid for, at one per gap, ms since the epoch on
   * `monotonicNow`. In the past when the bucket is full.
   */
  paidUntil: number
}

export class BurstLimit {
  constructor(
    private readonly burst: number,
    private readonly gapMs: number,
    private readonly now: () => number = monotonicNow,
  ) {}

  /** A bucket that is full. */
  static empty(): Burst {
    return { paidUntil: 0 }
  }

  /** Counts one action in `bucket`; false when the bucket is empty (and it is not counted). */
  take(bucket: Burst): boolean {
    const now = this.now()
    const paidUntil = Math.max(bucket.paidUntil, now) + this.gapMs
    // Every token taken and not yet grown back again is a gap still to pay for.
    if (paidUntil - now > this.burst * this.gapMs) return false
    bucket.paidUntil = paidUntil
    return true
  }
}
