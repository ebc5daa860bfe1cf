import { ErrorCode, ParleyError } from './errors.js'
import { checkEventName } from './event-name.js'
import { MAX_EVENT_NAME_LENGTH } from './packets.js'

/**
 * The codes of a packet that cannot go, or was refused, for what its arguments hold: the ones
 * whose message names the event they concern (see `aboutEvent`).
 */
const ABOUT_PAYLOAD: ReadonlySet<string> = new Set([
  ErrorCode.UNSERIALIZABLE,
  ErrorCode.PAYLOAD_TOO_LARGE,
  ErrorCode.TOO_DEEP,
  ErrorCode.FORBIDDEN_KEY,
  ErrorCode.INVALID_JSON,
  ErrorCode.INVALID_BINARY,
])

/**
 * `message` about the event `name`, the way the client's own errors say it: `event "price":
 * ...` for the event itself, `reply to "quote": ...` (`reply` true) for an answer to it. An
 * application with many emits learns which one failed without reading a stack.
 */
export function aboutEvent(name: string, message: string, reply = false): string {
  return `${reply ? 'reply to' : 'event'} ${JSON.stringify(name)}: ${message}`
}

/**
 * `error`, when its code is one of a payload that cannot go (too large, too deep, a forbidden
 * key, not JSON, bad binary), with a message that names the event it concerns (`aboutEvent`):
 * the same code, `details` and `cause`. Any other error, or one that
 * names the event already (the encoder names what JSON cannot write), as it is. Never throws.
 */
export function namedAfterEvent<E>(
  error: E,
  name: string | undefined,
  reply = false,
): E | ParleyError<string> {
  if (name === undefined || !(error instanceof ParleyError) || !ABOUT_PAYLOAD.has(error.code)) return error
  const message = aboutEvent(name, '', reply)
  if (error.message.startsWith(message)) return error
  // The cause it had, not the error itself: a logger that writes the causes' messages after the
  // error's would write this one's twice.
  return new ParleyError(error.code, message + error.message, {
    ...(error.cause !== undefined && { cause: error.cause }),
    ...(error.details && { details: { ...error.details } }),
  })
}

/** How far into a packet's text its event name may end: `[5,` and a seq, then the name escaped. */
const HEAD_CHARS = 32 + 6 * MAX_EVENT_NAME_LENGTH

/** `[5,<seq>,"<name>"`, with the spaces JSON allows: the head of an EVENT. */
const EVENT_HEAD = /^\s*\[\s*5\s*,\s*\d+\s*,\s*("(?:[^"\\]|\\.)*")/

/**
 * The event name at the head of a packet's text (`[5,<seq>,"<name>",...`), when it is one the
 * wire allows; undefined for any other packet, or a head that does not read so. Reads at most
 * the first HEAD_CHARS characters, whatever the length of the text: for the message of a
 * packet refused for what follows its head (too large, too deep, a forbidden key), which is
 * never parsed whole for it. Never throws.
 */
export function eventNameAtHead(text: string): string | undefined {
  const head = EVENT_HEAD.exec(text.length > HEAD_CHARS ? text.slice(0, HEAD_CHARS) : text)
  if (!head) return undefined
  let name: unknown
  try {
    name = JSON.parse(head[1]!)
  } catch {
    return undefined
  }
  return checkEventName(name) ? undefined : (name as string)
}
