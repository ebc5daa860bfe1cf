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
 * (the default) is "full jitter", which spreads a crowd of clients that lost the same server. The
 * random numbers are `Math.random()`'s (a test stubs it), with no parameter of the class's for
 * them: the bundle carries every parameter, and no caller but a test would pass one.
 */
export class Backoff {
  /** Attempts made since its owner last set this back to 0 (a transport stable, or a new start). */
  attempts = 0

  readonly #opts: BackoffOptions

  constructor(opts: BackoffOptions) {
    this.#opts = opts
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
      Math.min(reconnectionDelayMax, MAX_TIMER_MS, reconnectionDelay * 2 ** Math.min(this.attempts++, 31)),
    )
    // `| 0` is Math.floor here: the product is above 0 and at most MAX_TIMER_MS (2 ** 31 - 1).
    return (cap * (1 - randomization * Math.random())) | 0
  }
}
