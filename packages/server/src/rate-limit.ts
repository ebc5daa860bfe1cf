/**
 * Counts occurrences of something worth a warning and says when a log line is due: at most one
 * per `everyMs` (no timer: a quiet server logs nothing). The line reports how many came since
 * the previous one, so a burst costs one line and loses no count.
 */
export class WarningRate {
  #total = 0
  #sinceLine = 0
  #lastLine = Number.NEGATIVE_INFINITY

  constructor(private readonly everyMs = 10_000) {}

  /** How many have been counted since the start. */
  get total(): number {
    return this.#total
  }

  /** Counts one; returns how many came since the last line when a line is due now, else 0. */
  count(now = Date.now()): number {
    this.#total++
    this.#sinceLine++
    if (now - this.#lastLine < this.everyMs) return 0
    const since = this.#sinceLine
    this.#sinceLine = 0
    this.#lastLine = now
    return since
  }
}
