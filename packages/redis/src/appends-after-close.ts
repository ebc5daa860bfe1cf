// The appends to handed-off tails that come after the adapter closed: nothing writes those tails
// any more, so each is lost to its session. Said in one warning for the close, with their total:
// a closing server gives its sessions their last packets over several event-loop turns (each
// session's close on its own), and a line for each turn would tell one loss in pieces.
import { RedisErrorCode } from './send.js'
import { WARN_INTERVAL, type Warnings } from './warnings.js'

/** Counts the appends after the close, and says them once they stop coming. */
export class AppendsAfterClose {
  /** Appends counted since the line was last said (or since the close). */
  #count = 0
  /** An append came since the last turn's end was looked at. */
  #cameThisTurn = false

  constructor(private readonly warnings: Warnings) {}

  /**
   * One append came after the close. The line waits for the end of the first event-loop turn
   * that brings no more, then says how many came in all. Not a timer: the process may exit at
   * any moment, and a turn's end keeps it alive where an unref'd timer would lose the line. A
   * stream of appends at every turn is said at the latest `WARN_INTERVAL` after its first.
   */
  dropped(): void {
    this.#cameThisTurn = true
    if (this.#count++ > 0) return
    // The monotonic clock: a step of the wall clock must neither say the line early, in pieces,
    // nor hold it past the window.
    const first = performance.now()
    const atTurnEnd = () => {
      if (this.#cameThisTurn && performance.now() - first < WARN_INTERVAL) {
        this.#cameThisTurn = false
        setImmediate(atTurnEnd)
        return
      }
      const appends = this.#count
      this.#count = 0
      this.#cameThisTurn = false
      this.warnings.warn(
        'handoff-append-closed',
        `${appends} append(s) to handed-off sessions' tails came after the adapter closed (${RedisErrorCode.APPEND_AFTER_CLOSE}); the nodes that take those sessions over find their tails incomplete`,
        { code: RedisErrorCode.APPEND_AFTER_CLOSE, appends },
      )
    }
    setImmediate(atTurnEnd)
  }
}
