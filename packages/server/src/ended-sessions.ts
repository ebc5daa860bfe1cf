import type { ClosePacket } from '@parley/protocol'
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

interface Entry extends Ending {
  /** When the entry stops answering (ms since the epoch). */
  readonly until: number
}

/**
 * The CLOSE of each session that ended recently, by sid, so that a resume of it is answered
 * with why it ended rather than a silent fresh session: the CLOSE may never have reached the
 * client (an SSE stream destroyed for 'slow consumer', a WebSocket cut for 'payload too large').
 *
 * Bounded in time and in count, with no timer: every entry lives the same `ttl`, so the Map's
 * insertion order is also expiry order; expired entries are dropped from the front when one is
 * added, and an expired entry that is looked up is dropped then. Past `max` the oldest goes.
 */
export class EndedSessions {
  readonly #entries = new Map<string, Entry>()
  readonly #ttl: number
  readonly #max: number

  /** `ttl`: ms an entry answers (0 keeps nothing); `max`: entries kept at most. */
  constructor(ttl: number, max: number) {
    this.#ttl = ttl
    this.#max = max
  }

  /** Entries held now (expired ones not yet dropped included). */
  get size(): number {
    return this.#entries.size
  }

  /** Remembers how session `sid` ended: its CLOSE, after it took the client's `seq` up to `ack`. */
  add(sid: string, close: Outgoing<ClosePacket>, ack: number, now = Date.now()): void {
    if (this.#ttl <= 0 || this.#max <= 0) return
    this.#entries.delete(sid)
    this.#entries.set(sid, { close, ack, until: now + this.#ttl })
    for (const [key, entry] of this.#entries) {
      if (entry.until > now && this.#entries.size <= this.#max) break
      this.#entries.delete(key)
    }
  }

  /** How session `sid` ended, if it did within the last `ttl` ms. */
  get(sid: string, now = Date.now()): Ending | undefined {
    const entry = this.#entries.get(sid)
    if (!entry) return undefined
    if (entry.until > now) return entry
    this.#entries.delete(sid)
    return undefined
  }
}
