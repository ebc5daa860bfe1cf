import { ErrorCode } from '@parley/protocol'
import type { FastifyBaseLogger } from 'fastify'
import type { Metrics } from './metrics.js'
import { WarningRate } from './rate-limit.js'
import type { Refusal } from './server.js'

/**
 * The `maxSessions` bound: says when a new session would take the node past it, counts the
 * refusal, and logs at warn at most once per 10 s (a flood costs one line, not one per
 * handshake). Resumes never come here: they add no session.
 */
export class SessionLimit {
  readonly #rate = new WarningRate()

  constructor(
    readonly max: number,
    private readonly log: FastifyBaseLogger,
    private readonly metrics: Metrics,
  ) {}

  /** The refusal of a new session when `held` sessions are already here, or null. */
  refuse(held: number): Refusal | null {
    if (held < this.max) return null
    this.metrics.full()
    const refused = this.#rate.count()
    if (refused > 0) {
      this.log.warn(
        { refused, maxSessions: this.max },
        `parley: refused ${refused} new session(s) since the last such line: this node holds maxSessions (${this.max}). Clients try again after their backoff; raise maxSessions or add nodes if they are real`,
      )
    }
    return {
      status: 503,
      code: ErrorCode.SERVER_FULL,
      message: 'the server holds as many sessions as it may: try again later',
    }
  }
}
