/**
 * Exponential backoff with jitter. Attempt n (from 0) waits a random time in
 * `[cap·(1 − randomization), cap]`, where `cap = min(max, base · 2ⁿ)`; randomization 1 (the
 * default) is "full jitter", which spreads a crowd of clients that lost the same server.
 */
export class Backoff {
  /** Attempts made since the last reset. */
  attempts = 0

  readonly #base: number
  readonly #max: number
  readonly #randomization: number
  readonly #random: () => number

  constructor(base: number, max: number, randomization: number, random: () => number = Math.random) {
    this.#base = base
    this.#max = max
    this.#randomization = randomization
    this.#random = random
  }

  /** The delay before the next attempt, in ms; counts the attempt. */
  next(): number {
    // 2^31 already passes any sane max; the cap on the exponent keeps the product finite.
    const cap = Math.min(this.#max, this.#base * 2 ** Math.min(this.attempts, 31))
    this.attempts++
    return Math.floor(cap * (1 - this.#randomization * this.#random()))
  }

  reset(): void {
    this.attempts = 0
  }
}
