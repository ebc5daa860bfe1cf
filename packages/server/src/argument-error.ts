import { shown } from './thrown.js'

/** The code of every error an API call throws for an argument it cannot take. */
export const INVALID_ARGUMENT = 'PARLEY_INVALID_ARGUMENT' as const

/**
 * A programmer's error, thrown at once by the call that was given it (a room that is not a
 * string of 1 to 256 characters, a timeout that is not a number of ms, a schema that does not
 * compile, a middleware that is not a function): a `TypeError`, or a `RangeError` for a number
 * out of range, as JavaScript's own are, with a stable `code` to branch on (as
 * `ParleyOptionError` has for options). Never sent on the wire: the protocol's `ErrorCode` table
 * does not hold it. Exported for adapters, whose own calls refuse their arguments the same way.
 */
export function argumentError(
  message: string,
  options?: { cause?: unknown; range?: boolean },
): (TypeError | RangeError) & { code: typeof INVALID_ARGUMENT } {
  const error = options?.range ? new RangeError(message, options) : new TypeError(message, options)
  return Object.assign(error, { code: INVALID_ARGUMENT } as const)
}

/**
 * A listener must be a function, checked when it is added: kept as it was, a number or an object
 * counted as a listener of its event when a request came, so the request got no answer at all
 * (not even PARLEY_NO_HANDLER) and its client waited for its whole timeout.
 */
export function checkListener(event: string, listener: unknown): void {
  if (typeof listener !== 'function') {
    throw argumentError(
      `the listener of "${shown(event).slice(0, 64)}" must be a function, not ${listener === null ? 'null' : typeof listener}`,
    )
  }
}
