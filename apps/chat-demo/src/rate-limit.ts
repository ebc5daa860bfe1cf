import { monotonicNow } from './monotonic.js'

/**
 * A fixed-window counter: at most `limit` actions per `periodMs`. Its state is two plain
 * numbers (`RateWindow`) that the caller keeps, in `socket.data` for the chat: plain JSON goes
 * with a session that a draining node hands to another one, so a rolling restart neither
 * forgets nor resets anyone's count. No timers; timed on `monotonicNow`, which a step of the
 * wall clock does not move.
 */
export interface RateWindow {
  /** When the current window began, ms since the epoch on `monotonicNow`. */
  start: number
  /** Actions counted in it. */
  count: number
}

export class RateLimit {
  constructor(
    private readonly limit: number,
    private readonly periodMs: number,
    private readonly now: () => number = monotonicNow,
  ) {}

  /** A window with nothing counted yet. */
  static empty(): RateWindow {
    return { start: 0, count: 0 }
  }

  /** Counts one action in `window`; false when it is over the limit (and is not counted). */
  take(window: RateWindow): boolean {
    const now = this.now()
    // A window that begins later than now was handed over by a node whose clock runs ahead of
    // this one's (see `monotonicNow`): taken to begin now, it lasts one period here at most.
    if (window.start > now) window.start = now
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
    const now = this.now()
    return Math.max(0, Math.min(window.start, now) + this.periodMs - now)
  }
}
