import { ErrorCode, type ParleyError } from '@parley/protocol'

/** The most reasons a broadcast's error names; the rest are counted as `other`. */
const MAX_REASONS = 3

/**
 * Why the sockets of a broadcast with acks did not reply, counted for its error's message: an
 * operator reads `2 socket(s) did not reply within 2000 ms: 1 timed out, 1 moved` in a log line,
 * where the replies of `details` are not shown.
 */
export class MissingReplies {
  /** By reason, in the order each first came. */
  readonly #counts = new Map<string, number>()

  /** A socket whose reply failed with `error`. */
  add(error: ParleyError<string>): void {
    this.#count(reason(error), 1)
  }

  /** `count` sockets that had not answered when the broadcast's timeout ended the wait. */
  timedOut(count: number): void {
    if (count > 0) this.#count('timed out', count)
  }

  /** `: 2 timed out, 1 moved`, the commonest reasons first; empty with none. */
  toString(): string {
    const reasons = [...this.#counts].sort((a, b) => b[1] - a[1])
    const shown = reasons.slice(0, MAX_REASONS).map(([why, n]) => `${n} ${why}`)
    const others = reasons.slice(MAX_REASONS).reduce((sum, [, n]) => sum + n, 0)
    if (others > 0) shown.push(`${others} other`)
    return shown.length === 0 ? '' : `: ${shown.join(', ')}`
  }

  #count(why: string, n: number): void {
    this.#counts.set(why, (this.#counts.get(why) ?? 0) + n)
  }
}

/** A failed reply's reason in a word or two; a code this node does not know, as itself. */
function reason(error: ParleyError<string>): string {
  switch (error.code) {
    case ErrorCode.SESSION_MOVED:
      return 'moved'
    case ErrorCode.DISCONNECTED:
      return 'left'
    case ErrorCode.ACK_TIMEOUT:
      // A volatile emit dropped on its way (no transport, or past highWaterMark).
      return error.details?.dropped === true ? 'dropped' : 'timed out'
    default:
      return error.code
  }
}
