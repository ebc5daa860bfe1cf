// The replies of a broadcast with acks made before its count is given: its sender must hear the
// count first, so they wait for it. The taker of one may make another at once (a socket failed
// as it is taken): made while the held ones are passed on, it goes behind them, neither dropped
// nor ahead of replies made before it.
import type { BroadcastReply } from '@parley/server'

/** Replies held until `release`, then passed on as they come. */
export class EarlyReplies {
  readonly #reply: (reply: BroadcastReply) => void
  /** Held until released; undefined once every one of them was passed on. */
  #held: BroadcastReply[] | undefined = []
  /** How many of `#held` were passed on (a reply made meanwhile is pushed behind them). */
  #passed = 0
  #released = false

  constructor(reply: (reply: BroadcastReply) => void) {
    this.#reply = reply
  }

  /** True once `release` was called: the count is given. */
  get released(): boolean {
    return this.#released
  }

  /** Takes one reply: held until `release`, passed on at once after. */
  readonly take = (made: BroadcastReply): void => {
    if (this.#held) this.#held.push(made)
    else this.#reply(made)
  }

  /**
   * Runs `count` (which gives the count), then passes on what is held, in order, and from now on
   * each reply as it comes. Once: a call while the count is given does nothing.
   */
  release(count: () => void): void {
    if (this.#released) return
    this.#released = true
    count()
    const held = this.#held
    if (!held) return
    // Bounded: a reply is made once per socket asked.
    while (this.#passed < held.length) {
      const made = held[this.#passed++] as BroadcastReply
      this.#reply(made)
    }
    this.#held = undefined
  }
}
