import { cutText, ErrorCode } from '@parley/protocol'
import type { FastifyBaseLogger } from 'fastify'
import { BurstLog } from './burst-log.js'
import { MIDDLEWARE_REFUSED } from './incoming.js'

/**
 * The message an ERROR packet carries when a handler fails: never the error's own text, unless the
 * error carries a code of the application's (then it is a refusal meant for the client).
 */
export const HANDLER_FAILED = 'the handler failed'

/**
 * The message an ERROR packet carries instead of a refusal's own (schema, middleware, queue) when
 * that one does not fit in `maxPayload` (a message of up to 1024 characters, the event's name
 * besides, under a small limit): the client gets the refusal's code with this.
 */
export const REFUSAL_TOO_LONG = 'refused: the message of the refusal does not fit in maxPayload'

/**
 * Event names that get a burst of their own (see `EventFailures`), for handlers and for
 * listeners; failures for names past them share one burst, whose lines list the names.
 */
const MAX_EVENT_BURSTS = 64

/**
 * How much of an event name a client chose is logged: names reach a middleware at up to
 * MAX_EVENT_NAME_LENGTH (256) characters, any the client likes, and a line names up to eleven.
 */
export const LOGGED_NAME_LENGTH = 64

/** The mark after a name cut for the log, before how many characters were left out. */
const CUT = '…+'

/**
 * `name` as a line shows a name its client chose: past LOGGED_NAME_LENGTH, its first characters
 * (never half a surrogate pair), the mark, and how many were left out (`"aaa…+192"`). A name
 * cut so shows that it was, and how long it was; its start is what tells names apart.
 */
export function loggedName(name: string): string {
  if (name.length <= LOGGED_NAME_LENGTH) return name
  const kept = cutText(name, LOGGED_NAME_LENGTH)
  return `${kept}${CUT}${name.length - kept.length}`
}

/** The first failure a line counts: its error, whose stack says where to fix it, and its event. */
type Failure = { err: unknown; event: string }

/**
 * The application's own code failing on events: handlers (and the replies they give),
 * `socket.use` middleware and listeners of the socket's and the server's events, with an error
 * without a code of the application's (a bug, or a failure such as a database away), and the
 * callbacks of the server's emits that asked for a reply, with any error. A client
 * sends events as fast as it likes, and with one line per event, each with a stack, a client
 * whose events make a handler throw would flood the application's log; so each is logged at
 * error once per burst (see `BurstLog`): the first at once with its `err` and `event`, then the
 * `count` since, and the names of the events they concern (`events`).
 *
 * A handler's, a reply's or a listener's failures have a burst per event name: each event's
 * handlers are code of their own, so a bug in one must not keep the stack of another's out of
 * the log while its burst lasts, and only names the application listens to can fail (their
 * number is the application's, not the client's; past `MAX_EVENT_BURSTS` they share one). A
 * middleware's have one burst for every event: the middleware runs for any name the client
 * makes up, and a burst per name would give a client one line per name; those names are logged
 * cut to LOGGED_NAME_LENGTH. The ack callbacks'
 * have one burst too: the reply that runs one does not say which event it answers.
 */
export class EventFailures {
  readonly #middleware: BurstLog<Failure>
  readonly #handlers: BurstsPerEvent
  readonly #listeners: BurstsPerEvent
  readonly #replies: BurstsPerEvent
  readonly #acks: BurstLog<{ err: unknown }>
  readonly #tooLong: BurstLog<Failure & { code: string }>

  constructor(log: FastifyBaseLogger) {
    const error = (message: (count: number, first: Failure | undefined) => string) =>
      new BurstLog(log, 'error', message)
    this.#middleware = error(
      (count, first) =>
        `event middleware failed for ${count} event(s) since the last such line, with an error without a code of the application's (a code is 1 to 64 of A-Z, 0-9 and _, and begins PARLEY_ only when it is one of Parley's wire codes; the first: its err, for ${JSON.stringify(first?.event)}); each was refused with ${ErrorCode.HANDLER_ERROR} '${MIDDLEWARE_REFUSED}'`,
    )
    this.#handlers = new BurstsPerEvent(() =>
      error(
        (count, first) =>
          `event handler failed for ${count} event(s) since the last such line, with an error without a code of the application's (a code is 1 to 64 of A-Z, 0-9 and _, and begins PARLEY_ only when it is one of Parley's wire codes; the first: its err, for "${first?.event}"); a client that asked for a reply got ${ErrorCode.HANDLER_ERROR} '${HANDLER_FAILED}'`,
      ),
    )
    this.#listeners = new BurstsPerEvent(() =>
      error(
        (count, first) =>
          `"${first?.event}" listener failed ${count} time(s) since the last such line (the first: its err)`,
      ),
    )
    this.#acks = new BurstLog(
      log,
      'error',
      (count) => `ack callback failed ${count} time(s) since the last such line (the first: its err)`,
    )
    // At warn, one burst for every event: the refusal was the application's on purpose, and its
    // client got its code; only its words were lost, for a limit set too small for them.
    this.#tooLong = new BurstLog(
      log,
      'warn',
      (count, first) =>
        `event refusal too long for maxPayload for ${count} event(s) since the last such line (the first: its err, for ${JSON.stringify(first?.event)}); each client got the refusal's code with '${REFUSAL_TOO_LONG}' instead of its message`,
    )
    this.#replies = new BurstsPerEvent(() =>
      error(
        (count, first) =>
          `reply could not be sent for ${count} event(s) since the last such line (the first: its err, for "${first?.event}"); each client got ${ErrorCode.HANDLER_ERROR} '${HANDLER_FAILED}' instead`,
      ),
    )
  }

  /**
   * An ack callback of the application's (`socket.emit(event, ..., callback)`) threw: an emit
   * made to every socket, each with a callback that fails the same way, would otherwise write
   * one line per socket.
   */
  ack(err: unknown): void {
    this.#acks.record({ err })
  }

  /**
   * A `socket.use` middleware refused `event` with `err`, which has no code of the application's.
   * The name is the client's, whatever it made up: logged cut (see `loggedName`), and quoted
   * as JSON in the message, so that it cannot pass for the line's own words.
   */
  middleware(event: string, err: unknown): void {
    const name = loggedName(event)
    this.#middleware.record({ err, event: name }, name)
  }

  /** A handler of `event` threw or rejected with `err`, which has no code of the application's. */
  handler(event: string, err: unknown): void {
    this.#handlers.record(event, err)
  }

  /** A handler of `event` replied with what cannot be sent (`err` says why: too large, not serializable). */
  reply(event: string, err: unknown): void {
    this.#replies.record(event, err)
  }

  /**
   * The refusal of `event` (a middleware's, a schema's) with `code` did not fit in `maxPayload`
   * (`err` says by how much): its client got the code with REFUSAL_TOO_LONG. The name is the
   * client's, logged cut as a middleware's (see `middleware`).
   */
  refusalTooLong(event: string, code: string, err: unknown): void {
    const name = loggedName(event)
    this.#tooLong.record({ err, event: name, code }, name)
  }

  /** A listener of the socket's or the server's own `event` (`disconnect`, `connection`, ...) threw or rejected. */
  listener(event: string, err: unknown): void {
    this.#listeners.record(event, err)
  }

  /** The server closes: each logs what it has not logged yet. */
  close(): void {
    this.#acks.close()
    this.#middleware.close()
    this.#tooLong.close()
    this.#handlers.close()
    this.#listeners.close()
    this.#replies.close()
  }
}

/** A burst for each event name, up to `MAX_EVENT_BURSTS`; the names past them share one. */
class BurstsPerEvent {
  readonly #make: () => BurstLog<Failure>
  readonly #bursts = new Map<string, BurstLog<Failure>>()
  #others: BurstLog<Failure> | undefined
  #closed = false

  constructor(make: () => BurstLog<Failure>) {
    this.#make = make
  }

  record(event: string, err: unknown): void {
    let burst = this.#bursts.get(event)
    if (burst === undefined) {
      if (this.#bursts.size < MAX_EVENT_BURSTS) {
        burst = this.#burst()
        this.#bursts.set(event, burst)
      } else burst = this.#others ??= this.#burst()
    }
    burst.record({ err, event }, event)
  }

  close(): void {
    this.#closed = true
    for (const burst of this.#bursts.values()) burst.close()
    this.#others?.close()
  }

  /**
   * A new burst; closed already after the close (an event's first failure then: `disconnect`
   * listeners that reject after it), so that what it counts is logged by the end of the turn
   * rather than held for 10 s, past the process's exit.
   */
  #burst(): BurstLog<Failure> {
    const burst = this.#make()
    if (this.#closed) burst.close()
    return burst
  }
}
