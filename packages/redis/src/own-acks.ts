/**
 * This node's own broadcasts with acks on their way to Redis and back, by request id: each takes
 * a count `q` of the broadcast channel's (see cut.ts), though it travels on the request channel.
 * A node reads both channels on its one subscriber connection, in the order Redis ran their
 * PUBLISHes, so a claim marker cuts requests as it cuts broadcasts. A socket being handed over
 * (positioned) is left out of such a broadcast when it is emitted, and asked when the request
 * comes back, on the side of the cut it comes back on, as a plain broadcast reaches it; the
 * sender's count of its own sockets waits for that moment.
 */
export class OwnAcks {
  /**
   * By request id: its count, and what runs when it comes back (true) or is lost (false). In the
   * order of their counts: each is added as it takes one (see ack-broadcast.ts).
   */
  readonly #onTheirWay = new Map<string, { q: number; settle: (came: boolean) => void }>()

  /** Request `id`, counted `q`, is PUBLISHed: `settle` runs once, when it comes back or is lost. */
  sent(id: string, q: number, settle: (came: boolean) => void): void {
    this.#onTheirWay.set(id, { q, settle })
  }

  /**
   * Request `id` of this node's came back: those sent before it that did not were lost (own
   * messages come back in the order they were PUBLISHed). Returns its count, undefined when
   * it is not on its way any more (given up already).
   */
  read(id: string): number | undefined {
    const own = this.#onTheirWay.get(id)
    if (!own) return undefined
    this.passed(own.q - 1)
    this.#onTheirWay.delete(id)
    own.settle(true)
    return own.q
  }

  /** The count of request `id`, undefined when it is not on its way any more. */
  placeOf(id: string): number | undefined {
    return this.#onTheirWay.get(id)?.q
  }

  /** Whether request `id` is still on its way: neither back nor settled as lost. */
  has(id: string): boolean {
    return this.#onTheirWay.has(id)
  }

  /**
   * Request `id` is not waited for any more (its PUBLISH was refused or never sent, or given up
   * with no socket left out of it): settled by the caller now. One given up unanswered with
   * sockets left out stays on its way instead: Redis may still run it (see ack-broadcast.ts).
   */
  forget(id: string): void {
    this.#onTheirWay.delete(id)
  }

  /**
   * The adapter closes (its questions settled first): no request of this node's comes back now,
   * its subscriber gone. Every one still on its way is settled as lost, so that what waits for
   * it (a given-up question's probe timer) ends with the close rather than outliving it; one
   * given up later finds it not on its way, and starts nothing.
   */
  close(): void {
    this.passed(Number.POSITIVE_INFINITY)
  }

  /**
   * Own messages up to `q` came back or were settled as lost (a later own broadcast came back,
   * or the note after a resubscribe did): requests at or below it still on their way never
   * come, and are settled as such.
   */
  passed(q: number): void {
    // Called for every own message that comes back: only those it settles are looked at, not
    // every request on its way.
    for (const [id, own] of this.#onTheirWay) {
      if (own.q > q) break
      this.#onTheirWay.delete(id)
      own.settle(false)
    }
  }
}
