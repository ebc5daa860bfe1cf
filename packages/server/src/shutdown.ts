import { CloseReason, type EventsMap } from '@parley/protocol'
import type { FastifyBaseLogger } from 'fastify'
import { within } from './drain.js'
import type { ServerSocket } from './socket.js'

/** What ending the sessions at shutdown needs from the server. */
export interface ShutdownContext<L extends EventsMap, E extends EventsMap, D> {
  log: FastifyBaseLogger
  /** The `shutdown` option: the `retryAfter` hint of a CLOSE 'server shutdown', and its spread. */
  retryAfter: number
  retrySpread: number
  /** Every socket whose session is alive here, at the moment of the call. */
  sockets: () => ServerSocket<L, E, D>[]
  /** Whether `sid`'s session is still alive here. */
  holds: (sid: string) => boolean
}

/**
 * How the sessions still on this node end when it shuts down, once the drain is over: with
 * CLOSE 'server shutdown' and a `retryAfter` hint drawn for each, at once, or, for those whose
 * middleware holds events they acknowledged, once those events went through (see
 * `finishEvents`). Apart from the server so that what close waits for, and what a GET of such a
 * session waits for meanwhile (see `finishing`), live in one place.
 */
export class Shutdown<L extends EventsMap, E extends EventsMap, D> {
  readonly #context: ShutdownContext<L, E, D>
  /** Sids of the sessions that finish the events in their middleware before they end. */
  readonly #finishing = new Set<string>()
  /** Resolved by `ended`, once every session has ended (see `finishing`). */
  #allEnded: { promise: Promise<void>; resolve: () => void } | undefined

  constructor(context: ShutdownContext<L, E, D>) {
    this.#context = context
  }

  /**
   * The `retryAfter` of one session's CLOSE 'server shutdown' (the `shutdown` option): drawn for
   * each, so that a spread spreads the clients' first attempts.
   */
  retryAfter(): number {
    const { retryAfter, retrySpread } = this.#context
    return retryAfter + Math.floor(Math.random() * (retrySpread + 1))
  }

  /** See `ParleyServer.finishEvents`. */
  async finishEvents(limitMs: number): Promise<void> {
    const busy: ServerSocket<L, E, D>[] = []
    for (const socket of this.#context.sockets()) {
      // Frozen ones are handed off: the drain took their events, and `close` ends them.
      if (socket.session.state === 'frozen') continue
      if (socket.eventsInMiddleware > 0) busy.push(socket)
      else this.#end(socket)
    }
    if (busy.length === 0) return
    for (const socket of busy) this.#finishing.add(socket.session.sid)
    this.#allEnded ??= deferred()
    await within(Promise.all(busy.map((socket) => socket.finishEvents())), limitMs, undefined)
    let events = 0
    let sessions = 0
    for (const socket of busy) {
      const left = socket.connected ? socket.eventsInMiddleware : 0
      events += left
      if (left > 0) sessions++
    }
    if (events > 0)
      this.#context.log.warn(
        { events, sessions, waitedMs: Math.max(0, limitMs) },
        'parley: shutdown: events acknowledged to their clients were still in the socket middleware when the wait for them ran out; they end with their sessions, unhandled',
      )
  }

  /** See `ParleyServer.finishing`. */
  finishing(sid: string): Promise<void> | undefined {
    if (!this.#finishing.has(sid) || !this.#context.holds(sid)) return undefined
    return this.#allEnded?.promise
  }

  /** Ends every session still alive here (see `ParleyServer.close`). */
  endAll(): void {
    for (const socket of this.#context.sockets()) this.#end(socket)
  }

  /** Every session has ended: what waits for one finishing its events (see `finishing`) goes on. */
  ended(): void {
    this.#finishing.clear()
    this.#allEnded?.resolve()
  }

  /** Ends a session at close: CLOSE 'server shutdown', with a `retryAfter` hint of its own. */
  #end(socket: ServerSocket<L, E, D>): void {
    socket.session.end(CloseReason.SERVER_SHUTDOWN, { retryAfter: this.retryAfter(), kind: 'shutdown' })
  }
}

/** A promise and the function that resolves it. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {}
  const promise = new Promise<void>((done) => {
    resolve = done
  })
  return { promise, resolve }
}
