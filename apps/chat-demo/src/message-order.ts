import { monotonicNow } from './monotonic.js'

/**
 * A socket's message refused for want of the store, that its later messages wait for (plain
 * JSON, kept in `socket.data`: it goes with a session that a draining node hands to another).
 */
export interface Stall {
  /** The refused message's key: the same message coming again ends the wait. */
  key: string
  /** When the wait lapses, ms since the epoch on `monotonicNow`. */
  until: number
}

/** Where a socket keeps its stall: `socket.data` for the chat. */
export interface Holder {
  stall?: Stall
}

/**
 * Keeps a socket's messages in the order they were sent when the store comes back between two
 * of them. The page sends a message without waiting for the answer to the one before: when the
 * first is refused for want of the store (STORE_UNAVAILABLE), the next may be on its way already,
 * and be stored if the store is back when it arrives, before the first, which the page sends
 * again only later. So after such a refusal the socket's later messages are refused the same way
 * until the refused one comes again (the page sends it again first, then the rest in order).
 *
 * A message without a key cannot be told when it comes again: its refusal holds nothing back.
 * The wait lapses after `holdMs`, so that a client that gives the message up is not refused for
 * ever. No timers: the state is one plain object in the holder, like `RateWindow`; timed on
 * `monotonicNow`, which a step of the wall clock does not move.
 */
export class MessageOrder {
  constructor(
    private readonly holdMs: number,
    private readonly now: () => number = monotonicNow,
  ) {}

  /**
   * True when the message under `key` must wait (an earlier one was refused and has not come
   * again). The refused one itself coming again ends the wait, whatever its answer will be.
   */
  waits(holder: Holder, key: string | undefined): boolean {
    const stall = holder.stall
    if (stall === undefined) return false
    const now = this.now()
    // A wait that lapses later than `holdMs` from now was handed over by a node whose clock runs
    // ahead of this one's (see `monotonicNow`): it lapses `holdMs` from now at the latest.
    if (stall.until > now + this.holdMs) stall.until = now + this.holdMs
    if (key !== stall.key && now < stall.until) return true
    delete holder.stall
    return false
  }

  /** The message under `key` was refused for want of the store: the later ones wait for it. */
  refused(holder: Holder, key: string | undefined): void {
    if (key !== undefined && holder.stall === undefined) {
      holder.stall = { key, until: this.now() + this.holdMs }
    }
  }
}
