import { ErrorCode, ParleyError, type WireValue } from '@parley/protocol'

/** Called once with the reply's arguments, or with the error that ended the wait. */
export type Settle = (error: ParleyError<string> | null, args: WireValue[]) => void

/** setTimeout fires at once for delays past a signed 32-bit number of ms. */
const MAX_TIMER_MS = 2 ** 31 - 1

interface Pending {
  settle: Settle
  timer: ReturnType<typeof setTimeout> | undefined
}

/**
 * Replies the client is waiting for, by ack id. Pending replies survive transport switches and
 * resumes (the request is replayed with its ack id); they end on a reply, a timeout, or the end
 * of the session.
 */
export class AckManager {
  #nextId = 1
  readonly #pending = new Map<number, Pending>()

  readonly #maxPending: number

  constructor(maxPending: number) {
    this.#maxPending = maxPending
  }

  /** Number of replies awaited. */
  get size(): number {
    return this.#pending.size
  }

  /**
   * Registers a wait and returns its ack id. `timeout` (ms) ends it with PARLEY_ACK_TIMEOUT;
   * undefined, Infinity or more than a timer can hold (about 24.8 days) waits for as long as
   * the session lives.
   */
  register(settle: Settle, timeout?: number): number {
    if (this.#pending.size >= this.#maxPending) {
      throw new ParleyError(
        ErrorCode.TOO_MANY_PENDING_ACKS,
        `more than ${this.#maxPending} replies awaited`,
        {
          details: { limit: this.#maxPending },
        },
      )
    }
    const id = this.#nextId
    // Ids only need to be unique among pending requests; wrap long before unsafe integers.
    this.#nextId = id >= 2 ** 31 ? 1 : id + 1
    const timer =
      timeout === undefined || timeout > MAX_TIMER_MS
        ? undefined
        : setTimeout(() => {
            this.settle(id, new ParleyError(ErrorCode.ACK_TIMEOUT, `no reply within ${timeout} ms`), [])
          }, timeout)
    this.#pending.set(id, { settle, timer })
    return id
  }

  /** Ends one wait; false when nobody waits for this id (late or unknown reply). */
  settle(id: number, error: ParleyError<string> | null, args: WireValue[]): boolean {
    const pending = this.#pending.get(id)
    if (!pending) return false
    this.#pending.delete(id)
    clearTimeout(pending.timer)
    pending.settle(error, args)
    return true
  }

  /** Forgets a wait without settling it (the request never left: its emit threw). */
  cancel(id: number): void {
    const pending = this.#pending.get(id)
    clearTimeout(pending?.timer)
    this.#pending.delete(id)
  }

  /** Ends every wait with the same error (the session ended). */
  rejectAll(error: ParleyError<string>): void {
    for (const id of [...this.#pending.keys()]) this.settle(id, error, [])
  }
}
