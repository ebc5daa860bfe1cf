import type { FastifyBaseLogger } from 'fastify'

/**
 * Logs the sessions this node claimed after a lone node's restart (handed off by a node that
 * drained with no other node alive). Each is normal, and they come in a burst as the clients
 * come back: a node restarted with 10 000 sessions would write 10 000 lines. So the first is
 * logged at once, then one line per `everyMs` with how many came since, while they keep
 * coming; `close` logs what is left. No count is lost, and a quiet node keeps no timer.
 */
export class RestartClaims {
  readonly #log: FastifyBaseLogger
  readonly #everyMs: number
  #total = 0
  #sinceLine = 0
  #timer: NodeJS.Timeout | undefined

  constructor(log: FastifyBaseLogger, everyMs = 10_000) {
    this.#log = log
    this.#everyMs = everyMs
  }

  /** Counts one claim; logs it at once unless a line was written within `everyMs`. */
  record(): void {
    this.#total++
    this.#sinceLine++
    if (this.#timer === undefined) this.#flush()
  }

  /** The server closes: logs the claims not logged yet, and keeps no timer. */
  close(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    if (this.#sinceLine > 0) this.#line()
  }

  /** Logs what came since the last line, and waits `everyMs` for more; stops when none came. */
  #flush(): void {
    this.#timer = undefined
    if (this.#sinceLine === 0) return
    this.#line()
    this.#timer = setTimeout(() => this.#flush(), this.#everyMs)
    // A server that closes without `close` (a test, a crash) must not be held open by it.
    this.#timer.unref()
  }

  #line(): void {
    const count = this.#sinceLine
    this.#sinceLine = 0
    this.#log.info(
      { count, total: this.#total },
      `parley: ${count} session(s) claimed after a restart since the last such line (the node that handed them off was the only one alive); what was sent to each between that node closing and its claim is lost`,
    )
  }
}
