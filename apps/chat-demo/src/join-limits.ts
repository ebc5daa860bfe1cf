import { RateLimit, type RateWindow } from './rate-limit.js'
import { ChatErrorCode, Limits, type Refusal, refusal } from './shared.js'

/** What a session keeps of its joins (in `socket.data`: plain JSON, it makes a handoff). */
export interface Joiner {
  /** Its window for changes of room. */
  moves: RateWindow
  /** Its window for joins of the room it is in already. */
  rejoins: RateWindow
}

/**
 * The rate limits on a socket's joins. A change of room tells everyone in two rooms who is there
 * now: a client switching in a loop would have the server announce to them without end (and open
 * rooms as fast). A join of the room the socket is in already tells nobody anything, but costs as
 * much: a step of the store, a people list looked up on every node of a cluster, and up to
 * `Limits.history` messages in its answer. Asked in a loop, it would have the server (and Redis)
 * work and send many times what the client sends. The page asks for its room again only when its
 * session moved while a join was under way (or when the person clicks the room they are in):
 * `Limits.rejoins` a period is plenty, counted apart from the changes, so that someone who just
 * clicked through rooms still gets their room back.
 */
export class JoinLimits {
  readonly #changes = new RateLimit(Limits.roomChanges, Limits.roomPeriod)
  readonly #rejoins = new RateLimit(Limits.rejoins, Limits.roomPeriod)

  /** Counts a join (`change`: of another room than the socket's); its refusal past the limit. */
  take(joiner: Joiner, change: boolean): Refusal | undefined {
    const [limit, window] = this.#of(joiner, change)
    if (limit.take(window)) return undefined
    const wait = `(wait ${Math.ceil(limit.retryIn(window) / 1000)} s)`
    const period = `${Limits.roomPeriod / 1000} s`
    return refusal(
      ChatErrorCode.TOO_MANY_ROOM_CHANGES,
      change
        ? `slow down: at most ${Limits.roomChanges} changes of room in ${period} ${wait}`
        : `slow down: you are in this room, and joined it ${Limits.rejoins} times in ${period} ${wait}`,
    )
  }

  /**
   * Uncounts a join `take` counted that told nobody anything: the store could not answer it, and
   * the page asks again every 2 s until it can. A wait for the store must not use up the person's joins.
   */
  giveBack(joiner: Joiner, change: boolean): void {
    const [limit, window] = this.#of(joiner, change)
    limit.giveBack(window)
  }

  #of(joiner: Joiner, change: boolean): [RateLimit, RateWindow] {
    return change ? [this.#changes, joiner.moves] : [this.#rejoins, joiner.rejoins]
  }
}
