import { MAX_UNANSWERED_COMMANDS } from './commands.js'

/**
 * The most own broadcasts remembered as given up (see `GivenUp`). Only one that was sent can
 * still come back, and no more than `MAX_UNANSWERED_COMMANDS` are sent unanswered at once.
 */
export const MAX_GIVEN_UP = MAX_UNANSWERED_COMMANDS

/**
 * This node's own broadcasts (by `q`) given up as lost while positioned sockets waited for them:
 * those sockets took them then, so that one coming back late (Redis ran its PUBLISH after all)
 * is not delivered to them again. Own broadcasts come back in the order they were sent, so one
 * coming back settles every earlier one.
 *
 * Nothing comes back while Redis is away or stalled: what is remembered is bounded. Past
 * `MAX_GIVEN_UP`, the oldest entries are folded into a floor, every broadcast up to which counts
 * as given up: one of those still on its way then reaches no positioned socket (lost, as Redis
 * may lose any) rather than reaching one twice.
 */
export class GivenUp {
  readonly #given = new Set<number>()
  /** Every own broadcast up to this counts as given up. */
  #floor = 0

  /** How many are remembered one by one. */
  get size(): number {
    return this.#given.size
  }

  /** Own broadcast `q` was given up, and may still come back. */
  add(q: number): void {
    if (q <= this.#floor) return
    this.#given.add(q)
    if (this.#given.size <= MAX_GIVEN_UP) return
    // The first added is about the oldest: given up in the order they were sent, mostly.
    const oldest = this.#given.values().next().value as number
    this.#given.delete(oldest)
    this.#floor = Math.max(this.#floor, oldest)
    for (const given of this.#given) if (given <= this.#floor) this.#given.delete(given)
  }

  /**
   * Whether own broadcast `q`, back now (or settled by a note sent after it), was given up.
   * Every one up to `q` is forgotten: it came back before, or never will.
   */
  back(q: number): boolean {
    const was = q <= this.#floor || this.#given.has(q)
    if (this.#given.size > 0) for (const given of this.#given) if (given <= q) this.#given.delete(given)
    return was
  }
}
