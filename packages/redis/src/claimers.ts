// The nodes that took over the sessions this node handed off, by socket id: a reply sent back
// to one of this node's questions (`answered`, on its response channel) is taken only from the
// node that claimed that socket's session. Any node can publish on that channel; one that did
// not claim the session (a stray or confused one) must not settle this node's questions.

interface Claimer {
  node: string
  /** When the claimer stops being heard (see `Claimers.record`). */
  until: number
}

export class Claimers {
  /** In the order recorded: with one ttl throughout, also the order they expire in. */
  readonly #bySocket = new Map<string, Claimer>()

  /**
   * Node `node` claimed the session of socket `id` (its claim marker came back, and the server
   * gave its last packets). Heard for `ttl` ms: the snapshot's own time to live (the recovery
   * window), which the server's wait for those replies (at most `handoff.timeout` after the
   * move) stays within unless configured longer. A later claim of the same socket (it came back
   * here, and moved again) replaces it: the server's earlier waits ended then.
   */
  record(id: string, node: string, ttl: number): void {
    this.#prune()
    this.#bySocket.delete(id)
    this.#bySocket.set(id, { node, until: performance.now() + ttl })
  }

  /**
   * The claim of `node` for the session of socket `id` was revoked (its handoff's write given
   * up on: the session stayed here): a reply it sends back is not taken any more. A later claim
   * recorded since, by another node, stays.
   */
  forget(id: string, node: string): void {
    if (this.#bySocket.get(id)?.node === node) this.#bySocket.delete(id)
  }

  /** True when `node` is the one that claimed the session of socket `id`, and still heard. */
  claimedBy(id: string, node: string): boolean {
    this.#prune()
    return this.#bySocket.get(id)?.node === node
  }

  /** Forgets the claimers no longer heard: from the oldest, so bounded by what expired. */
  #prune(): void {
    const now = performance.now()
    for (const [id, claimer] of this.#bySocket) {
      if (claimer.until > now) return
      this.#bySocket.delete(id)
    }
  }
}
