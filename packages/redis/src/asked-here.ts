// The other nodes' broadcasts with acks this node asked its sockets lately, with the count it
// gave for each. A sender that hears this node subscribe again, or its own subscriber come back,
// asks again the nodes whose count it still waits for (see ack-broadcast.ts): this node may have
// had the first ask all the same (it came in right after its subscriber was back, or its count
// was what got lost on the way). Its sockets must not get the question twice, so the second ask
// gives the count again, if given, and asks nobody.

/**
 * How long an ask is kept at least. A sender asks again only while it waits for this node's
 * count, which it does for at most its `requestTimeout` after Redis ran the first ask; the
 * second ask may wait as long again for Redis to take it. Kept for three times this node's own
 * `requestTimeout` when that is longer (the nodes of a cluster are given the same, as a rule).
 */
export const ASKED_KEEP_MS = 60_000

/**
 * The most asks kept at once, so that memory stays bounded under a flood of broadcasts with
 * acks: past it the oldest is let go first, and should it be asked again, its sockets would be
 * asked a second time. Ten thousand is far past what other nodes ask within `ASKED_KEEP_MS`.
 */
export const MAX_ASKED_KEPT = 10_000

/** What is kept of one ask: when it came (`performance.now()`), and the count given, once it is. */
interface Asked {
  readonly at: number
  count: number | undefined
}

/** The asks of other nodes' broadcasts with acks this node took lately, by asking node and id. */
export class AskedHere {
  /** By `<asking node> <request id>`, oldest first. */
  readonly #asks = new Map<string, Asked>()
  readonly #keepMs: number

  constructor(requestTimeout: number) {
    this.#keepMs = Math.max(ASKED_KEEP_MS, 3 * requestTimeout)
  }

  /**
   * Request `id` of `node` comes in: `'first'` when it was not asked here yet (kept from now
   * on, its sockets to be asked), else the count given for it (undefined while none is).
   */
  take(node: string, id: string): { first: true } | { first: false; count: number | undefined } {
    const now = performance.now()
    this.#letGo(now)
    const key = `${node} ${id}`
    const asked = this.#asks.get(key)
    if (asked) return { first: false, count: asked.count }
    this.#asks.set(key, { at: now, count: undefined })
    if (this.#asks.size > MAX_ASKED_KEPT) {
      const oldest = this.#asks.keys().next().value
      if (oldest !== undefined) this.#asks.delete(oldest)
    }
    return { first: true }
  }

  /** The count this node gave for request `id` of `node`: given again should it be asked again. */
  counted(node: string, id: string, count: number): void {
    const asked = this.#asks.get(`${node} ${id}`)
    if (asked) asked.count = count
  }

  /** Lets go of the asks older than the keep: kept in the order they came, the oldest first. */
  #letGo(now: number): void {
    for (const [key, asked] of this.#asks) {
      if (now - asked.at < this.#keepMs) return
      this.#asks.delete(key)
    }
  }
}
