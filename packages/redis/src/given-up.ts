import { MAX_UNANSWERED_COMMANDS } from './commands.js'

/**
 * The most own broadcasts remembered as given up (see `GivenUp`). Only one that was sent can
 * still come back, and no more than `MAX_UNANSWERED_COMMANDS` are sent unanswered at once.
 */
export const MAX_GIVEN_UP = MAX_UNANSWERED_COMMANDS

/**
 * This node's own broadcasts (by `q`) whose PUBLISH was sent and given up unanswered: Redis may
 * still run it, and it then comes back late. The sockets positioned for a handover when it was
 * given up took it then; each is remembered with the count of positionings at that moment
 * (`Cut`), so that one coming back late reaches only the sockets positioned since, which never
 * had it. Own broadcasts come back in the order they were sent, so one coming back settles
 * every earlier one.
 *
 * Nothing comes back while Redis is away or stalled: what is remembered is bounded. Past
 * `MAX_GIVEN_UP`, the oldest entries are folded into a floor, every broadcast up to which counts
 * as taken by every socket positioned up to the floor's count: one of those still on its way
 * then reaches none of those sockets (lost, as Redis may lose any) rather than one twice, and
 * is no longer waited for.
 */
export class GivenUp {
  /** `q` → the count of positionings when it was given up. */
  readonly #given = new Map<number, number>()
  /** Every own broadcast up to this counts as given up... */
  #floor = 0
  /** ...and as taken by the sockets positioned up to this count. */
  #floorTakenBy = 0

  /** How many are remembered one by one: each may still come back. */
  get size(): number {
    return this.#given.size
  }

  /** Own broadcast `q` was given up, and may still come back; positionings up to `takenBy` took it. */
  add(q: number, takenBy: number): void {
    if (q <= this.#floor) return
    this.#given.set(q, takenBy)
    if (this.#given.size <= MAX_GIVEN_UP) return
    // The first added is about the oldest: given up in the order they were sent, mostly.
    const [oldest, stamp] = this.#given.entries().next().value as [number, number]
    this.#given.delete(oldest)
    this.#floor = Math.max(this.#floor, oldest)
    this.#floorTakenBy = Math.max(this.#floorTakenBy, stamp)
    for (const [given, by] of this.#given) {
      if (given > this.#floor) continue
      this.#given.delete(given)
      this.#floorTakenBy = Math.max(this.#floorTakenBy, by)
    }
  }

  /**
   * When own broadcast `q` was given up: the count of positionings up to which sockets took it
   * then; undefined when it was not given up (no socket has it yet).
   */
  takenBy(q: number): number | undefined {
    return q <= this.#floor ? this.#floorTakenBy : this.#given.get(q)
  }

  /**
   * Whether one remembered may still reach the socket of positioning `at` should it come back:
   * one it did not take when it was given up (it was positioned since). Whatever the count the
   * socket is positioned past: one sent before a claim marker may run after it, late, on
   * another connection, and be on the claimer's side of the cut.
   */
  owes(at: number): boolean {
    for (const takenBy of this.#given.values()) if (at > takenBy) return true
    return false
  }

  /**
   * The first one remembered that the socket of positioning `at` owes (see `owes`); undefined
   * when it owes none.
   */
  firstOwed(at: number): number | undefined {
    let first: number | undefined
    for (const [q, takenBy] of this.#given) if (at > takenBy && (first === undefined || q < first)) first = q
    return first
  }

  /**
   * Own broadcast `q` is back now (or settled by a note sent after it): every one up to `q` is
   * forgotten, as it came back before, or never will. Whether any was.
   */
  back(q: number): boolean {
    let forgot = false
    for (const given of this.#given.keys()) {
      if (given > q) continue
      this.#given.delete(given)
      forgot = true
    }
    return forgot
  }
}
