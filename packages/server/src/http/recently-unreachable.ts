import { ExpiringSet } from '../expiring-set.js'

/**
 * How long a node's address that could not be reached is not tried again (see
 * `Forwarder.ownerOf`): a node that died, its machine gone without a reset, would otherwise hold
 * every request for one of its sessions up to `connectTimeout`, for as long as the adapter names
 * that address (a lapsed node's, for a day with `@parley/redis`). Past it one request tries again.
 */
export const UNREACHABLE_KEPT_MS = 10_000

/** The most unreachable addresses a node remembers (see `UNREACHABLE_KEPT_MS`), the newest kept. */
export const UNREACHABLE_KEPT = 1000

/** A connection to an owner that did not open within `connectTimeout` (see forward-http.ts). */
export class NoConnectionInTime extends Error {}

/**
 * Whether `err`, a forwarding's failure, is worth remembering: only a wait that ran out (no
 * connection within `connectTimeout`, or a WebSocket upgrade unanswered that long: ws's own
 * error) is what a vanished or hung machine gives, and what a next try would wait for again.
 * A refused or reset connection fails at once anyway, and may be one stale kept-alive
 * connection of an owner that is alive: remembered, its clients would be answered as for an
 * unknown session for `UNREACHABLE_KEPT_MS`, and start new sessions.
 */
export function waitRanOut(err: unknown): boolean {
  return (
    err instanceof NoConnectionInTime ||
    (err instanceof Error && err.message === 'Opening handshake has timed out')
  )
}

/**
 * Owners (node and URL) that could not be reached lately. The key is node and URL, so a node
 * restarted on the same address (a new id) is reached at once.
 */
export class RecentlyUnreachable {
  readonly #owners = new ExpiringSet(UNREACHABLE_KEPT_MS, UNREACHABLE_KEPT)

  /** Node `node` at `url` could not be reached: not tried again for `UNREACHABLE_KEPT_MS`. */
  add(node: string, url: string): void {
    this.#owners.add(`${node} ${url}`)
  }

  /** True while node `node` at `url` could not be reached less than `UNREACHABLE_KEPT_MS` ago. */
  has(node: string, url: string): boolean {
    return this.#owners.has(`${node} ${url}`)
  }
}
