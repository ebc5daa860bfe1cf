import { ErrorCode, ParleyError, type WireValue } from '@parley/protocol'

/** Called once: with the reply's arguments, or with the error that ended the wait. */
export type Settle = (error: ParleyError<string> | null, args: WireValue[]) => void

interface Pending {
  settle: Settle
  timer: NodeJS.Timeout | undefined
}

/**
 * Replies a socket awaits from its client, by ack id. A wait ends on a REPLY, an ERROR, its
 * timeout, or the end of the session; whichever comes first settles it, the rest are ignored.
 */
export class AckRegistry {
  readonly #max: number
  readonly #pending = new Map<number, Pending>()
  #nextId = 1

  constructor(maxPending: number) {
    this.#max = maxPending
  }

  /** Replies awaited now. */
  get size(): number {
    return this.#pending.size
  }

  /**
   * Registers a wait and returns its ack id. Throws PARLEY_TOO_MANY_PENDING_ACKS past the limit.
   * Without `timeout` the wait lasts as long as the session.
   */
  register(settle: Settle, timeout?: number): number {
    if (this.#pending.size >= this.#max) {
      throw new ParleyError(ErrorCode.TOO_MANY_PENDING_ACKS, `more than ${this.#max} replies awaited`, {
        details: { limit: this.#max },
      })
    }
    let id = this.#nextId
    // Ids need only be unique among pending waits; wrap long before unsafe integers.
    while (this.#pending.has(id)) id = id >= 2 ** 31 ? 1 : id + 1
    this.#nextId = id >= 2 ** 31 ? 1 : id + 1
    const timer =
      timeout === undefined
        ? undefined
        : setTimeout(
            () =>
              this.settle(id, new ParleyError(ErrorCode.ACK_TIMEOUT, `no reply within ${timeout} ms`), []),
            timeout,
          )
    this.#pending.set(id, { settle, timer })
    return id
  }

  /** Ends one wait. False when nobody waits for this id (a late or unknown reply). */
  settle(id: number, error: ParleyError<string> | null, args: WireValue[]): boolean {
    const pending = this.#pending.get(id)
    if (!pending) return false
    this.#pending.delete(id)
    clearTimeout(pending.timer)
    pending.settle(error, args)
    return true
  }

  /** Ends a wait without settling it (the request could not be sent). */
  forget(id: number): void {
    const pending = this.#pending.get(id)
    if (!pending) return
    this.#pending.delete(id)
    clearTimeout(pending.timer)
  }

  /** Ends every wait with the same error. */
  rejectAll(error: ParleyError<string>): void {
    for (const id of [...this.#pending.keys()]) this.settle(id, error, [])
  }
}
