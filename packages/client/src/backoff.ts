/**
 * Exponential backoff with jitter. Attempt n (from 0) waits a random time in
 * `[cap·(1 − randomization), cap]`, where `cap = min(max, base · 2ⁿ)`; randomization 1 (the
 * default) is "full jitter", which spreads a crowd of clients that lost the same server.
 */
export class Backoff {
  /** Attempts made since the last reset. */
  attempts = 0

  constructor(
    private readonly base: number,
    private readonly max: number,
    private readonly randomization: number,
    private readonly random: () => number = Math.random,
  ) {}

  /** The delay before the next attempt, in ms; counts the attempt. */
  next(): number {
    // 2^31 already passes any sane max; the cap on the exponent keeps the product finite.
    const cap = Math.min(this.max, this.base * 2 ** Math.min(this.attempts, 31))
    this.attempts++
    return Math.floor(cap * (1 - this.randomization * this.random()))
  }

  reset(): void {
    this.attempts = 0
  }
}
