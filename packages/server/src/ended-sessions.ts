import type { ClosePacket } from '@parley/protocol'
import { RecentSessions } from './recent-sessions.js'
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

  /** Remembers how session `sid` ended: its CLOSE, after it took the client's `seq` up to `ack`. */
  add(sid: string, close: Outgoing<ClosePacket>, ack: number, now = Date.now()): void {
    this.#entries.add(sid, { close, ack }, now)
  }

  /** How session `sid` ended, if it did within the last `ttl` ms. */
  get(sid: string, now = Date.now()): Ending | undefined {
    return this.#entries.get(sid, now)
  }
}
