import type { FastifyBaseLogger } from 'fastify'
import { WarningRate } from './rate-limit.js'

/** How much of a sid a log line shows: enough to match two lines, far too little to resume. */
const SID_PREFIX = 6

/**
 * Counts requests and resumes naming a session this node does not know, and says so in the log
 * at warn, at most once per 10 s. A few are normal (a client back after its session expired);
 * a steady stream usually means a load balancer that spreads one client's requests over
 * several nodes without session affinity or an adapter that routes them. The sid is a secret:
 * a line shows only a short prefix of one, as an example.
 */
export class UnknownSessions {
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
  record(sid: string, what: 'request' | 'resume', now = Date.now()): void {
    const count = this.#rate.count(now)
    if (count === 0) return
    // The sid came from the client: only characters a sid may hold reach the log.
    const example = sid.slice(0, SID_PREFIX).replace(/[^A-Za-z0-9_-]/g, '?')
    this.#log.warn(
      { count, total: this.#rate.total, example: `${example}…`, latest: what },
      `parley: ${count} request(s) or resume(s) named a session this node does not know, since the last such line. Many of them: is a load balancer spreading sessions over nodes without affinity (or without an adapter that routes them)?`,
    )
  }
}
