import { MAX_TIMER_MS } from '@parley/protocol'

/**
 * The lowest cap on the wait between upgrade probes and on the reconnection backoff, in ms,
 * whatever the options say: a cap of 0 (or of a millisecond) tried again the moment each try
 * failed, for good, where WebSocket is always refused or the server turns every attempt away
 * (hundreds of tries a second).
 */
export const WAIT_FLOOR_MS = 100

/** The options that pace a backoff (the client's own options fit). */
export interface BackoffOptions {
  reconnectionDelay: number
  reconnectionDelayMax: number
  randomization: number
}

/**
 * Exponential backoff with jitter. Attempt n (from 0) waits a random time in
 * `[cap·(1 − randomization), cap]`, where
 * `cap = max(WAIT_FLOOR_MS, min(reconnectionDelayMax, reconnectionDelay · 2ⁿ))`; randomization 1
 * (the default) is "full jitter", which spreads a crowd of clients that lost the same server.
 */
export class Backoff {
  /** Attempts made since the last reset. */
  attempts = 0

  readonly #opts: BackoffOptions
  readonly #random: () => number

  constructor(opts: BackoffOptions, random: () => number = Math.random) {
    this.#opts = opts
    this.#random = random
  }

  /** The delay before the next attempt, in ms; counts the attempt. */
  next(): number {
    const { reconnectionDelay, reconnectionDelayMax, randomization } = this.#opts
    // The cap on the exponent keeps the product finite; MAX_TIMER_MS, the longest a timer waits
    // (longer fires at once), bounds a max of Infinity.
    // WAIT_FLOOR_MS under it: a reconnectionDelay or reconnectionDelayMax of 0 made every wait 0,
    // and a client tried again the moment each attempt failed, for good.
    const cap = Math.max(
      WAIT_FLOOR_MS,
      Math.min(reconnectionDelayMax, MAX_TIMER_MS, reconnectionDelay * 2 ** Math.min(this.attempts, 31)),
    )
    this.attempts++
    // `| 0` is Math.floor here: the product is above 0 and at most MAX_TIMER_MS (2 ** 31 - 1).
    return (cap * (1 - randomization * this.#random())) | 0
  }

  reset(): void {
    this.attempts = 0
  }
}
