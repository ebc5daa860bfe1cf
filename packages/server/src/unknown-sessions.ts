import type { FastifyBaseLogger } from 'fastify'
import { BurstLog } from './burst-log.js'

/** How much of a sid a log line shows: enough to match two lines, far too little to resume. */
const SID_PREFIX = 6

/**
 * Counts requests and resumes answered as naming a session this node does not know (ended, never
 * known, of a node that cannot be reached, another tenant's: every one, so that the count is
 * whole), and says so in the log at warn, one line per burst (see `BurstLog`). A few are normal
 * (a client back after its session expired); a steady stream usually means a load balancer that spreads one client's
 * requests over several nodes without session affinity or an adapter that routes them, or, with
 * such an adapter (@parley/redis), a store it cannot ask, which it warns about itself. The sid
 * is a secret: a line shows only a short prefix of one, as an example.
 */
export class UnknownSessions {
  readonly #burst: BurstLog
  #total = 0

  constructor(log: FastifyBaseLogger) {
    this.#burst = new BurstLog(
      log,
      'warn',
      (count) =>
        `${count} request(s) or resume(s) named a session this node does not know, since the last such line. A few are sessions that ended or expired. Many: a load balancer spreading sessions over nodes without affinity and without an adapter that routes them (such as @parley/redis), or, with one, its store away (see the adapter's own warnings)`,
    )
  }

  /** How many have been counted since the server started. */
  get total(): number {
    return this.#total
  }

  /** Counts one, and logs it with the burst it belongs to. */
  record(sid: string, what: 'request' | 'resume'): void {
    this.#total++
    // The sid came from the client: only characters a sid may hold reach the log.
    const example = sid.slice(0, SID_PREFIX).replace(/[^A-Za-z0-9_-]/g, '?')
    this.#burst.record({ example: `${example}…`, what })
  }

  /** The server closes: logs what is left of a burst. */
  close(): void {
    this.#burst.close()
  }
}
