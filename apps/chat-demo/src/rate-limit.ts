/**
 * A fixed-window counter per socket: at most `limit` actions per `periodMs`. Small and exact
 * enough for a chat; it keeps one number pair per socket and no timers.
 */
export class RateLimit {
  #windowStart = 0
  #count = 0

  constructor(
    private readonly limit: number,
    private readonly periodMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts one action; false when it is over the limit (and is not counted). */
  take(): boolean {
    const now = this.now()
    if (now - this.#windowStart >= this.periodMs) {
      this.#windowStart = now
      this.#count = 0
    }
    if (this.#count >= this.limit) return false
    this.#count++
    return true
  }

  /** Milliseconds until the next action is allowed (0 when it is). */
  retryIn(): number {
    if (this.#count < this.limit) return 0
    return Math.max(0, this.#windowStart + this.periodMs - this.now())
  }
}
