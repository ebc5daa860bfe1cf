/**
 * How long a node's address that could not be reached is not tried again (see
 * `Forwarder.ownerOf`): a node that died, its machine gone without a reset, would otherwise hold
 * every request for one of its sessions up to `connectTimeout`, for as long as the adapter names
 * that address (a lapsed node's, for a day with `@parley/redis`). Past it one request tries again.
 */
export const UNREACHABLE_KEPT_MS = 10_000

/** The most unreachable addresses a node remembers (see `UNREACHABLE_KEPT_MS`), the newest kept. */
const UNREACHABLE_KEPT = 1000

/**
 * Owners (node and URL) that could not be reached lately. The key is node and URL, so a node
 * restarted on the same address (a new id) is reached at once.
 */
export class RecentlyUnreachable {
  /** When each stops standing: insertion order is expiry order (one lifetime for all). */
  readonly #until = new Map<string, number>()

  /** Node `node` at `url` could not be reached: not tried again for `UNREACHABLE_KEPT_MS`. */
  add(node: string, url: string): void {
    const key = `${node} ${url}`
    const now = Date.now()
    this.#until.delete(key)
    this.#until.set(key, now + UNREACHABLE_KEPT_MS)
    for (const [oldest, until] of this.#until) {
      if (until > now && this.#until.size <= UNREACHABLE_KEPT) break
      this.#until.delete(oldest)
    }
  }

  /** True while node `node` at `url` could not be reached less than `UNREACHABLE_KEPT_MS` ago. */
  has(node: string, url: string): boolean {
    const key = `${node} ${url}`
    const until = this.#until.get(key)
    if (until === undefined) return false
    if (Date.now() < until) return true
    this.#until.delete(key)
    return false
  }
}
