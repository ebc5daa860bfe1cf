import type { ClosePacket } from '@parley/protocol'
import { RecentSessions } from './recent-sessions.js'
import { type RouteParams, sameParams } from './route-params.js'
import type { Outgoing } from './transports/transport.js'

/** How a session ended, as a resume of it is answered. */
export interface Ending {
  readonly close: Outgoing<ClosePacket>
  /**
   * The last `seq` of the client's the session took (0 for none): the ACK a client that says it
   * reads one (HELLO `closeAck`) gets before the CLOSE, so that it does not send again, into its
   * next session, what this one handled.
   */
  readonly ack: number
  /**
   * The route parameters the session opened under (a Fastify prefix such as `/:tenant`): only a
   * resume under the same hears how it ended (see `endingFor`). Absent when not known (a record
   * a node of an earlier version kept in the adapter's store): then it answers a resume under any.
   */
  readonly params?: RouteParams
}

/**
 * `ending`, when a resume under `params` (its request's route parameters) may hear it: not when
 * the session opened under others (another tenant of `/:tenant`), whose client the ended session
 * was not. That resume learns nothing of it, and gets a new session under its own route.
 */
export function endingFor(ending: Ending | undefined, params: Record<string, string>): Ending | undefined {
  if (ending?.params === undefined) return ending
  return sameParams(ending.params, params) ? ending : undefined
}

/**
 * Ended sessions whose CLOSE one server keeps for a resume; past it the oldest is forgotten.
 * `@parley/redis` keeps as many records of one node's ends in Redis (`MAX_ENDED_RECORDS`), from
 * this one number.
 */
export const MAX_ENDED_SESSIONS = 10_000

/**
 * The CLOSE of each session that ended recently, by sid, so that a resume of it is answered
 * with why it ended rather than a silent fresh session: the CLOSE may never have reached the
 * client (an SSE stream destroyed for 'slow consumer', a WebSocket cut for 'payload too large').
 * Bounded in time and in count, with no timer (see `RecentSessions`).
 */
export class EndedSessions {
  readonly #entries: RecentSessions<Ending>

  /** `ttl`: ms an entry answers (0 keeps nothing); `max`: entries kept at most. */
  constructor(ttl: number, max: number) {
    this.#entries = new RecentSessions(ttl, max)
  }

  /** Entries held now (expired ones not yet dropped included). */
  get size(): number {
    return this.#entries.size
  }

  /**
   * Remembers how session `sid` ended: its CLOSE, after it took the client's `seq` up to `ack`,
   * under the route parameters `params` (undefined when not known). `now` is on the monotonic
   * clock (see `RecentSessions`).
   */
  add(
    sid: string,
    close: Outgoing<ClosePacket>,
    ack: number,
    params?: RouteParams,
    now = performance.now(),
  ): void {
    this.#entries.add(sid, params === undefined ? { close, ack } : { close, ack, params }, now)
  }

  /** How session `sid` ended, if it did within the last `ttl` ms. */
  get(sid: string, now = performance.now()): Ending | undefined {
    return this.#entries.get(sid, now)
  }
}
