import { ErrorCode } from '@parley/protocol'
import type { FastifyBaseLogger } from 'fastify'
import { BurstLog } from './burst-log.js'
import type { Metrics } from './metrics.js'
import type { Refusal } from './refusals.js'

/**
 * The `maxSessions` bound: says when a new session would take the node past it, counts the
 * refusal, and logs at warn one line per burst (see `BurstLog`: a flood costs a line per 10 s,
 * not one per handshake). Resumes never come here: they add no session.
 */
export class SessionLimit {
  readonly #burst: BurstLog

  constructor(
    readonly max: number,
    log: FastifyBaseLogger,
    private readonly metrics: Metrics,
  ) {
    this.#burst = new BurstLog(
      log,
      'warn',
      (count) =>
        `refused ${count} new session(s) since the last such line: this node holds maxSessions (${max}). Clients try again after their backoff; raise maxSessions or add nodes if they are real`,
    )
  }

  /** The refusal of a new session when `held` sessions are already here, or null. */
  refuse(held: number): Refusal | null {
    if (held < this.max) return null
    this.metrics.full()
    this.#burst.record({ maxSessions: this.max })
    return {
      status: 503,
      code: ErrorCode.SERVER_FULL,
      message: 'the server holds as many sessions as it may: try again later',
    }
  }

  /** The server closes: logs what is left of a burst. */
  close(): void {
    this.#burst.close()
  }
}
