import { ErrorCode, ParleyError } from './errors.js'
import type { WireValue } from './packets.js'

/**
 * The longest delay a timer can hold: `setTimeout` fires at once for anything past a signed
 * 32-bit number of milliseconds (about 24.8 days). Longer ack timeouts wait without a timer.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1

/** The largest ack id: ids stay below 2^31, long before unsafe integers (unique while pending). */
export const MAX_ACK_ID = 2 ** 31 - 1

/** Whether `value` can be an ack id a table hands out: an integer from 1 to `MAX_ACK_ID`. */
export function isAckId(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 1 && (value as number) <= MAX_ACK_ID
}

/**
 * Where a node that takes a session over numbers its own questions, given the old node's next
 * ack id (`SessionSnapshot.nextAckId`): half the id space past it, wrapping within 1 to
 * `MAX_ACK_ID`. The old node goes on asking in the handoff's tail from its own next id, which a
 * fresh table starting at 1 would meet at once; this far away, it would take a billion of its
 * questions in that moment to reach the new node's.
 */
export function farAckId(nextAckId: number): number {
  return ((nextAckId - 1 + 2 ** 30) % MAX_ACK_ID) + 1
}

/** Called once: with the reply's arguments, or with the error that ended the wait. */
export type Settle = (error: ParleyError<string> | null, args: WireValue[]) => void

interface Pending {
  settle: Settle
  timer: ReturnType<typeof setTimeout> | undefined
  /** What `register` was given to put before the messages of its errors. */
  about: string
}

/**
 * The error a wait ends with, or what makes it from the wait's `about` (see `register`): one
 * error for every wait that ends at once (the end of the session) still names each one's event.
 */
export type EndError = ParleyError<string> | ((about: string) => ParleyError<string>)

/** Reads a table's count of waits for `awaitedReplies`: set by the class, which alone sees them. */
let count: (table: AckTable) => number

/**
 * Replies one side awaits from the other, by ack id: the same table on the server and the
 * client. A wait ends on a REPLY, an ERROR, its timeout or the end of the session, whichever
 * comes first; the rest are ignored. Waits survive transport switches and resumes: the request
 * is replayed with its ack id.
 *
 * ```ts
 * const acks = new AckTable(1000)
 * const ackId = acks.register((err, args) => console.log(err ?? args), 5000)
 * acks.settle(ackId, null, ['ok'])   // a REPLY came
 * ```
 */
export class AckTable {
  static {
    count = (table) => table.#pending.size
  }
  readonly #max: number
  readonly #failed: (err: unknown) => void
  readonly #pending = new Map<number, Pending>()
  /**
   * The id `register` tries next, an ack id (see `isAckId`): what a handoff's snapshot tells the
   * node taking over, which sets its own away from it (see `farAckId`). A field, not an accessor
   * or a constructor argument: the client bundles this class and never sets it.
   */
  nextId = 1

  /**
   * `maxPending`: waits allowed at once; `register` refuses past it. `failed` hears of a `settle`
   * callback (the application's) that throws: by default the error is thrown again from a
   * timer of its own, uncaught as it would have been, but without breaking off the packet
   * being handled or, in `rejectAll`, the waits after it.
   */
  constructor(maxPending: number, failed: (err: unknown) => void = rethrowLater) {
    this.#max = maxPending
    this.#failed = failed
  }

  /**
   * Registers a wait and returns its ack id (1 to 2^31 - 1). `timeout` (ms) ends it with
   * PARLEY_ACK_TIMEOUT; undefined, Infinity or more than `MAX_TIMER_MS` waits as long as the
   * session lives. Throws PARLEY_TOO_MANY_PENDING_ACKS past the limit. `about` goes before the
   * message of both errors: the client's `event "chat": `, so that an application with many emits
   * can tell which one failed.
   */
  register(settle: Settle, timeout?: number, about = ''): number {
    if (this.#pending.size >= this.#max) {
      throw new ParleyError(
        ErrorCode.TOO_MANY_PENDING_ACKS,
        `${about}more than ${this.#max} replies awaited`,
        {
          details: { limit: this.#max },
        },
      )
    }
    let id = this.nextId
    while (this.#pending.has(id)) id = id >= MAX_ACK_ID ? 1 : id + 1
    this.nextId = id >= MAX_ACK_ID ? 1 : id + 1
    // No timer for undefined (or NaN): compared, it is never `<=`.
    const timer = !((timeout as number) <= MAX_TIMER_MS)
      ? undefined
      : setTimeout(() => {
          this.settle(id, new ParleyError(ErrorCode.ACK_TIMEOUT, `${about}no reply within ${timeout} ms`))
        }, timeout as number)
    this.#pending.set(id, { settle, timer, about })
    return id
  }

  /** The ack ids awaited now. */
  ids(): number[] {
    return [...this.#pending.keys()]
  }

  /**
   * Ends one wait, with the reply's `args`, or none when it ends otherwise (an ERROR, its timeout,
   * the end of the session). False when nobody waits for this id (a late or unknown reply).
   */
  settle(id: number, error: EndError | null, args: WireValue[] = []): boolean {
    const pending = this.#pending.get(id)
    if (!pending) return false
    this.forget(id)
    try {
      pending.settle(typeof error === 'function' ? error(pending.about) : error, args)
    } catch (err) {
      this.#failed(err)
    }
    return true
  }

  /** Ends a wait without settling it (the request could not be sent). */
  forget(id: number): void {
    clearTimeout(this.#pending.get(id)?.timer)
    this.#pending.delete(id)
  }

  /**
   * Ends every wait (the session ended) with the same error, or each with the one `error` makes
   * of its `about`.
   */
  rejectAll(error: EndError): void {
    for (const id of [...this.#pending.keys()]) this.settle(id, error)
  }
}

/**
 * How many replies `table` awaits now. A function, not a member (a `size` accessor): the client
 * bundles the class and never counts its waits, and a bundler leaves out a function nothing
 * calls (and the static block that serves it alone), never a member.
 */
export function awaitedReplies(table: AckTable): number {
  return count(table)
}

function rethrowLater(err: unknown): void {
  setTimeout(() => {
    throw err
  }, 0)
}
