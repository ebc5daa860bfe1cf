import type { FastifyBaseLogger } from 'fastify'
import { WarningRate } from '../rate-limit.js'

/**
 * Counts requests and resumes that this node could not hand to the node owning their session
 * (refused connection, timeout, an answer other than the upgrade), and says so in the log at
 * warn, at most once per 10 s. The client is answered as for an unknown session meanwhile: a
 * few of them are a node that just went away; a steady stream is a node that others cannot
 * reach at the URL it published.
 */
export class UnreachableOwners {
  readonly #log: FastifyBaseLogger
  readonly #rate = new WarningRate()

  constructor(log: FastifyBaseLogger) {
    this.#log = log
  }

  /** How many have been counted since the server started. */
  get total(): number {
    return this.#rate.total
  }

  /** Counts one; logs when the last line is 10 s old (no timer: a quiet server logs nothing). */
  record(node: string, err: unknown, now = Date.now()): void {
    const count = this.#rate.count(now)
    if (count === 0) return
    this.#log.warn(
      { err, count, total: this.#rate.total, node },
      `parley: ${count} request(s) or resume(s) could not be forwarded to the node that owns their session, since the last such line; answered as for an unknown session`,
    )
  }
}
