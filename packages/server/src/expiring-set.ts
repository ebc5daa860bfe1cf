/**
 * Keys remembered for a while, a bounded number of them: each stands for `lifetime` ms from its
 * last `add`, and past `max` the oldest are forgotten. For what a node learns of its peers and
 * asks no one again meanwhile: the server's owners that could not be reached lately, the nodes
 * `@parley/redis` found without an address record. Exported for adapters, which remember such
 * answers too. One lifetime for all keys, so insertion order is expiry order: an `add` drops the
 * expired and the surplus from the front and stops at the first that stands, never walking the
 * rest.
 */
export class ExpiringSet {
  /** When each key stops standing (`Date.now()`), oldest first. */
  readonly #until = new Map<string, number>()

  constructor(
    /** How long a key stands after its last `add` (ms). */
    readonly lifetime: number,
    /** The most keys kept: past it, the oldest go. */
    readonly max: number,
  ) {}

  /** Remembers `key` for `lifetime` ms from now (again, when it was there already). */
  add(key: string): void {
    const now = Date.now()
    this.#until.delete(key)
    this.#until.set(key, now + this.lifetime)
    for (const [oldest, until] of this.#until) {
      if (until > now && this.#until.size <= this.max) break
      this.#until.delete(oldest)
    }
  }

  /** True while `key` was added less than `lifetime` ms ago (and not forgotten since). */
  has(key: string): boolean {
    const until = this.#until.get(key)
    if (until === undefined) return false
    if (Date.now() < until) return true
    this.#until.delete(key)
    return false
  }

  /** Forgets `key`: what it stood for is known to be over. */
  delete(key: string): void {
    this.#until.delete(key)
  }

  /** How many keys are kept, some of them possibly expired and not dropped yet. */
  get size(): number {
    return this.#until.size
  }
}
