/**
 * A fixed-window counter: at most `limit` actions per `periodMs`. Its state is two plain
 * numbers (`RateWindow`) that the caller keeps, in `socket.data` for the chat: plain JSON goes
 * with a session that a draining node hands to another one, so a rolling restart neither
 * forgets nor resets anyone's count. No timers.
 */
export interface RateWindow {
  /** When the current window began, ms since the epoch. */
  start: number
  /** Actions counted in it. */
  count: number
}

export class RateLimit {
  constructor(
    private readonly limit: number,
    private readonly periodMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** A window with nothing counted yet. */
  static empty(): RateWindow {
    return { start: 0, count: 0 }
  }

  /** Counts one action in `window`; false when it is over the limit (and is not counted). */
  take(window: RateWindow): boolean {
    const now = this.now()
    if (now - window.start >= this.periodMs) {
      window.start = now
      window.count = 0
    }
    if (window.count >= this.limit) return false
    window.count++
    return true
  }

  /** Uncounts an action `take` counted in `window` that turned out not to happen. */
  giveBack(window: RateWindow): void {
    if (window.count > 0) window.count--
  }

  /** Milliseconds until `window` allows the next action (0 when it does). */
  retryIn(window: RateWindow): number {
    if (window.count < this.limit) return 0
    return Math.max(0, window.start + this.periodMs - this.now())
  }
}
