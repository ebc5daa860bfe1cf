import type { ClosePacket } from '@parley/protocol'
import type { Outgoing } from './transports/transport.js'

interface Entry {
  close: Outgoing<ClosePacket>
  /** When the entry stops answering (ms since the epoch). */
  until: number
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

  /** Remembers how session `sid` ended. */
  add(sid: string, close: Outgoing<ClosePacket>, now = Date.now()): void {
    if (this.#ttl <= 0 || this.#max <= 0) return
    this.#entries.delete(sid)
    this.#entries.set(sid, { close, until: now + this.#ttl })
    for (const [key, entry] of this.#entries) {
      if (entry.until > now && this.#entries.size <= this.#max) break
      this.#entries.delete(key)
    }
  }

  /** The CLOSE of session `sid`, if it ended within the last `ttl` ms. */
  get(sid: string, now = Date.now()): Outgoing<ClosePacket> | undefined {
    const entry = this.#entries.get(sid)
    if (!entry) return undefined
    if (entry.until > now) return entry.close
    this.#entries.delete(sid)
    return undefined
  }
}
