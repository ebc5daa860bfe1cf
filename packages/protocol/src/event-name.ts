import { ErrorCode, ParleyError } from './errors.js'
import { MAX_EVENT_NAME_LENGTH, RESERVED_EVENTS } from './packets.js'

/**
 * The one rule for event names, on every path: what an application emits (server or client),
 * what a broadcast sends, what a schema is declared for, and what either decoder accepts.
 * A name is a string of 1 to `WireLimits.maxEventNameLength` UTF-16 units that does not name a
 * lifecycle event (`RESERVED_EVENTS`). Returns the coded error, or undefined when the name is
 * fine; never throws.
 *
 * ```ts
 * const bad = checkEventName(name)
 * if (bad) throw bad   // PARLEY_INVALID_EVENT_NAME or PARLEY_RESERVED_EVENT_NAME
 * ```
 */
export const checkEventName = (name: unknown): ParleyError<ErrorCode> | undefined => {
  // An arrow, as `isForbiddenKey` is: the client's bundle writes it in fewer bytes than a
  // function declaration.
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_EVENT_NAME_LENGTH) {
    return new ParleyError(
      ErrorCode.INVALID_EVENT_NAME,
      `event name must be a string of 1 to ${MAX_EVENT_NAME_LENGTH} characters`,
    )
  }
  if (RESERVED_EVENTS.has(name)) {
    return new ParleyError(ErrorCode.RESERVED_EVENT_NAME, `"${name}" is a reserved event name`)
  }
  return undefined
}

/**
 * Keys no payload may hold, either way: JSON.parse keeps them as plain keys, but an application
 * that later merges the payload into an object would be polluted through them.
 */
export const isForbiddenKey = (key: string): boolean => key === '__proto__' || key === 'constructor'
