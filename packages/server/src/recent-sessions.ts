/**
 * A value for each session that something happened to lately, by sid: kept for `ttl` ms, at most
 * `max` of them.
 *
 * Bounded in time and in count, with no timer: every entry lives the same `ttl`, so the Map's
 * insertion order is also expiry order; expired entries are dropped from the front when one is
 * added, and an expired entry that is looked up is dropped then. Past `max` the oldest goes.
 *
 * Times are read on the monotonic clock (`performance.now()`), as every timer runs: the `ttl` is
 * this node's own, and a step of the wall clock (NTP, an operator) must neither forget an entry
 * early nor keep it past its time.
 */
export class RecentSessions<V> {
  readonly #entries = new Map<string, { value: V; until: number }>()
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

  /** Keeps `value` for session `sid`, in place of any it had. */
  add(sid: string, value: V, now = performance.now()): void {
    if (this.#ttl <= 0 || this.#max <= 0) return
    this.#entries.delete(sid)
    this.#entries.set(sid, { value, until: now + this.#ttl })
    for (const [key, entry] of this.#entries) {
      if (entry.until > now && this.#entries.size <= this.#max) break
      this.#entries.delete(key)
    }
  }

  /** Forgets what was kept for session `sid`. */
  delete(sid: string): void {
    this.#entries.delete(sid)
  }

  /** The value kept for session `sid`, if it was added within the last `ttl` ms. */
  get(sid: string, now = performance.now()): V | undefined {
    const entry = this.#entries.get(sid)
    if (!entry) return undefined
    if (entry.until > now) return entry.value
    this.#entries.delete(sid)
    return undefined
  }
}
