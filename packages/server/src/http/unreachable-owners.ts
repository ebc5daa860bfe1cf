import type { FastifyBaseLogger } from 'fastify'
import { BurstLog } from '../burst-log.js'
import { ExpiringSet } from '../expiring-set.js'
import { UNREACHABLE_KEPT, UNREACHABLE_KEPT_MS } from './recently-unreachable.js'

/**
 * Counts requests and resumes that this node could not hand to the node owning their session
 * (refused connection, timeout, an answer other than the upgrade), and says so in the log at
 * warn, one line per burst (see `BurstLog`). This node answers such a request itself: as for an
 * unknown session, or as after its handoff when the session's node was handing it off, or, for a
 * resume whose session moved on meanwhile, with a try again; nothing when its client left before
 * the failure (an adapter's `routeRequest` may reject long after, a held poll's client gone).
 * The line says so, so that it is true of each. A few of them are a node that just went away;
 * a steady stream is a node that others cannot reach at the URL it published. The nodes are
 * remembered for `UNREACHABLE_KEPT_MS` (see `lately`).
 */
export class UnreachableOwners {
  readonly #burst: BurstLog
  readonly #lately = new ExpiringSet(UNREACHABLE_KEPT_MS, UNREACHABLE_KEPT)
  #total = 0

  constructor(log: FastifyBaseLogger) {
    this.#burst = new BurstLog(
      log,
      'warn',
      (count) =>
        `${count} request(s) or resume(s) could not be forwarded to the node that owns their session, since the last such line; this node answered each itself (as for an unknown session; as after its handoff, for a session its node was handing off; or with a try again, for a resume whose session moved on meanwhile), but for those whose client had left by then, which nobody answered`,
    )
  }

  /** How many have been counted since the server started. */
  get total(): number {
    return this.#total
  }

  /** Counts one, and logs it with the burst it belongs to. */
  record(node: string, err: unknown): void {
    this.#total++
    this.#lately.add(node)
    this.#burst.record({ err, node })
  }

  /**
   * True when a request or resume could not be handed to `node` less than `UNREACHABLE_KEPT_MS`
   * ago: a node that is live to the adapter (its heartbeat not lapsed yet) may be dead all the
   * same, killed a moment ago.
   */
  lately(node: string): boolean {
    return this.#lately.has(node)
  }

  /** The server closes: logs what is left of a burst. */
  close(): void {
    this.#burst.close()
  }
}
