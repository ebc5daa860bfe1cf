import {
  type ArgsWithoutAck,
  cutText,
  ErrorCode,
  type EventNames,
  type EventsMap,
  isWireCode,
} from '@parley/protocol'
import { argumentError } from './argument-error.js'
import { readKey } from './thrown.js'

/**
 * An incoming event as socket middleware sees it: `[name, ...args]`, without the ack function.
 * Typed by the socket's map of events the client may send.
 */
export type IncomingEvent<L extends EventsMap> = {
  [K in EventNames<L>]: [event: K, ...args: ArgsWithoutAck<L[K]>]
}[EventNames<L>]

/** Call with nothing to let the event through, with an error to refuse it. */
export type NextFunction = (error?: unknown) => void

/**
 * A per-socket middleware for incoming events (`socket.use`). One that declares `next` calls
 * `next()` to let the event go on, `next(error)` to refuse it. One of a single parameter (the
 * event) lets it through when it returns, or, async, when its promise resolves. A throw or a
 * rejection refuses the event. The arguments may be changed in place; the handlers get them as
 * the middleware left them.
 */
export type EventMiddleware<P extends unknown[] = [event: string, ...args: unknown[]]> = (
  event: P,
  next: NextFunction,
) => void | Promise<void>

/** Why an event did not reach its handlers, as the client will read it in an ERROR packet. */
export interface EventRefusal {
  code: string
  message: string
}

/** What the pipeline needs from its socket. */
export interface PipelineHooks {
  /** Null when the arguments are valid (or the event has no schema), else what is wrong. */
  validate(event: string, args: unknown[]): string | null
  /** Hands an event that passed to the handlers. */
  deliver(event: string, args: unknown[], ackId: number): void
  /**
   * Answers a refused event (with ERROR: on its ack id, or as a notice when 0). `cause` is the
   * middleware's error; undefined when the pipeline refused it itself (schema, queue).
   */
  refuse(event: string, ackId: number, refusal: EventRefusal, cause: unknown): void
}

interface Pending {
  packet: [string, ...unknown[]]
  ackId: number
}

/**
 * Parley's own codes the client knows. Any other `PARLEY_` code comes from a package's internals
 * (`PARLEY_REDIS_UNREACHABLE`, whose message names the Redis address, from the Redis adapter's
 * `ready()` a middleware awaited): never the application's choice, so never on the wire.
 */
const WIRE_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode))

/**
 * A code an application may put on the wire, in an ERROR packet or a handshake's refusal: of the
 * form every code on the wire has (`isWireCode`: a client refuses an ERROR with any other), and
 * not a package's internal one.
 */
function isAppCode(code: unknown): code is string {
  return isWireCode(code) && (!code.startsWith('PARLEY_') || WIRE_CODES.has(code))
}
const MAX_MESSAGE = 1024

/**
 * The code and message an ERROR packet carries for `error`, or `fallback` when it has no code:
 * an Error's message, a string thrown as it is, else (a message that is no string, or cannot be
 * read: a getter or a Proxy's trap that throws) the fallback message.
 */
export function refusalOf(error: unknown, fallbackCode: string, fallbackMessage: string): EventRefusal {
  const code = readKey(error, 'code')
  let message: unknown
  try {
    // `instanceof` throws on a revoked Proxy.
    message = error instanceof Error ? error.message : error
  } catch {}
  return {
    code: isAppCode(code) ? code : fallbackCode,
    // Never half an emoji: the client would show a replacement character.
    message: cutText((typeof message === 'string' && message) || fallbackMessage, MAX_MESSAGE),
  }
}

/**
 * What the client reads when a middleware refuses with an error without a code of the
 * application's: such an error may come from anywhere (a database driver's, say), so its
 * message is for the server's log only.
 */
export const MIDDLEWARE_REFUSED = 'refused by middleware'

/** True when `error` carries a code the application chose (see `refusalOf`). */
export function hasAppCode(error: unknown): boolean {
  return isAppCode(readKey(error, 'code'))
}

/**
 * The way from a decoded EVENT to its handlers: schema check, then the socket's middleware in
 * the order they were added, then the handlers. Events go through **one at a time, in the
 * order they arrived**, so that a slow (async) middleware cannot let a later event overtake an
 * earlier one: the delivery promise holds up to the handlers. When every middleware is done
 * synchronously (calls `next`, or returns without declaring it), nothing waits and nothing is
 * queued.
 */
export class EventPipeline {
  readonly #hooks: PipelineHooks
  readonly #maxWaiting: number
  readonly #middleware: EventMiddleware[] = []
  readonly #queue: Pending[] = []
  #busy = false
  #closed = false
  /** Who waits for the pipeline to hold no event (see `through`). */
  #idleWaiters: (() => void)[] | undefined

  /** @param maxWaiting events that may wait behind the one a middleware is working on. */
  constructor(maxWaiting: number, hooks: PipelineHooks) {
    this.#maxWaiting = maxWaiting
    this.#hooks = hooks
  }

  /** Events waiting behind an unfinished middleware (the head of the queue is being worked on). */
  get waiting(): number {
    return Math.max(0, this.#queue.length - 1)
  }

  /** Events taken and not through yet: the one a middleware is working on and those behind it. */
  get pending(): number {
    return this.#closed ? 0 : this.#queue.length
  }

  /**
   * Resolves once every event taken so far has gone through (handed to the handlers, or
   * refused), or the pipeline closed: what a closing server waits for before it ends the session,
   * since the session acknowledged those events when it received them.
   */
  through(): Promise<void> {
    if (this.pending === 0) return Promise.resolve()
    return new Promise((resolve) => {
      this.#idleWaiters ??= []
      this.#idleWaiters.push(resolve)
    })
  }

  use(middleware: EventMiddleware): void {
    if (typeof middleware !== 'function') throw argumentError('middleware must be a function')
    this.#middleware.push(middleware)
  }

  /** An event arrived (in order, once). */
  push(event: string, args: unknown[], ackId: number): void {
    if (this.#closed) return
    // The head of the queue is the event being worked on; the rest wait. A client that sends
    // faster than its middleware answers is told so, event by event, rather than filling memory.
    if (this.#queue.length > this.#maxWaiting) {
      const refusal = {
        code: ErrorCode.QUEUE_FULL,
        message: `"${event}": more than ${this.#maxWaiting} events wait for the middleware`,
      }
      this.#hooks.refuse(event, ackId, refusal, undefined)
      return
    }
    this.#queue.push({ packet: [event, ...args], ackId })
    if (!this.#busy) this.#drain()
  }

  /**
   * A pipeline with the same middleware, for a session that goes on here after `takeWaiting` (a
   * move given up on): this one stays closed, so that a middleware still working on an event it
   * took is ignored when it finishes (the event runs again in the successor).
   */
  successor(): EventPipeline {
    const next = new EventPipeline(this.#maxWaiting, this.#hooks)
    next.#middleware.push(...this.#middleware)
    return next
  }

  /** The session ended: events still waiting are dropped, middleware still running is ignored. */
  close(): void {
    this.#closed = true
    this.#queue.length = 0
    this.#idle()
  }

  /**
   * The session moves to another node: closes the pipeline as `close` does, and returns the
   * events that had not reached the handlers yet (the one a middleware was working on first),
   * for that node to run.
   */
  takeWaiting(): [name: string, args: unknown[], ackId: number][] {
    const waiting = this.#queue.map(({ packet: [name, ...args], ackId }): [string, unknown[], number] => [
      name,
      args,
      ackId,
    ])
    this.close()
    return waiting
  }

  #drain(): void {
    this.#busy = true
    while (this.#queue.length > 0 && !this.#closed) {
      const first = this.#queue[0]!
      const problem = this.#hooks.validate(first.packet[0], first.packet.slice(1))
      if (problem !== null) {
        this.#queue.shift()
        this.#hooks.refuse(
          first.packet[0],
          first.ackId,
          { code: ErrorCode.VALIDATION_FAILED, message: `"${first.packet[0]}": ${problem}` },
          undefined,
        )
        continue
      }
      if (!this.#run(first, 0)) return // an async middleware will call #finished
      this.#queue.shift()
    }
    this.#busy = false
    if (this.#queue.length === 0) this.#idle()
  }

  #idle(): void {
    const waiters = this.#idleWaiters
    if (!waiters) return
    this.#idleWaiters = undefined
    for (const resolve of waiters) resolve()
  }

  /** The head event finished asynchronously: take the next one. */
  #finished(): void {
    if (this.#closed) return
    this.#queue.shift()
    this.#drain()
  }

  /**
   * Runs middleware from `index`, then delivers or refuses the event. Returns true when that
   * happened synchronously; false when a middleware is still working (it resumes later).
   */
  #run(item: Pending, index: number): boolean {
    while (index < this.#middleware.length && !this.#closed) {
      const middleware = this.#middleware[index]!
      let sync = true
      let settled = false
      let outcome: { error: unknown } | undefined
      const finish = (error: unknown) => {
        if (settled) return
        settled = true
        if (sync) {
          outcome = { error }
          return
        }
        if (this.#closed) return
        if (error !== undefined && error !== null) this.#refuse(item, error)
        else if (!this.#run(item, index + 1)) return
        this.#finished()
      }
      try {
        const result = middleware(item.packet, finish)
        // One that does not declare `next` cannot call it: it is done when it returns, or when
        // the promise it returns resolves. (Read from its length: `([event]) => log(event)`.)
        const declaresNext = middleware.length >= 2
        if (isThenable(result)) {
          result.then(
            () => {
              if (!declaresNext) finish(undefined)
            },
            (error: unknown) => finish(error ?? new Error('the middleware rejected')),
          )
        } else if (!declaresNext) finish(undefined)
      } catch (error) {
        finish(error ?? new Error('the middleware threw'))
      }
      sync = false
      if (!outcome) return false
      if (outcome.error !== undefined && outcome.error !== null) {
        this.#refuse(item, outcome.error)
        return true
      }
      index++
    }
    // A middleware ended the session (`socket.disconnect()`) and let the event through all the
    // same: the middleware after it and the handlers would run for a socket that is gone.
    if (this.#closed) return true
    const [event, ...args] = item.packet
    this.#hooks.deliver(event, args, item.ackId)
    return true
  }

  /**
   * A middleware refused the event. Only an error with a code of the application's is a refusal
   * meant for the client (its code and message are sent); any other is told as the generic
   * MIDDLEWARE_REFUSED, as a handler's failure is, since a message written on purpose cannot be
   * told from one a library threw.
   */
  #refuse(item: Pending, error: unknown): void {
    const refusal = hasAppCode(error)
      ? refusalOf(error, ErrorCode.HANDLER_ERROR, MIDDLEWARE_REFUSED)
      : { code: ErrorCode.HANDLER_ERROR, message: MIDDLEWARE_REFUSED }
    this.#hooks.refuse(item.packet[0], item.ackId, refusal, error)
  }
}

export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  )
}
