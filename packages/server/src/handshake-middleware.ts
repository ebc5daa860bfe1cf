import { ErrorCode, isBusyCode } from '@parley/protocol'
import type { FastifyBaseLogger } from 'fastify'
import { BurstLog, logLine } from './burst-log.js'
import { hasAppCode, MIDDLEWARE_REFUSED, refusalOf } from './incoming.js'
import { type Refusal, shuttingDown } from './refusals.js'
import type { ServerSocket } from './socket.js'

/** What a client whose handshake middleware did not settle in time is told. */
export const middlewareTimedOut = (ms: number): Refusal => ({
  status: 503,
  code: ErrorCode.HANDSHAKE_TIMEOUT,
  message: `the handshake middleware did not settle within ${ms} ms`,
  middleware: true,
})

/**
 * True for the answer to a run of the middleware that did not settle within `handshakeTimeout`
 * (see `middlewareTimedOut`): no verdict on the client, unlike a refusal of the application's,
 * which may carry the same code but never `middleware`.
 */
export const isMiddlewareTimeout = (refusal: Refusal): boolean =>
  refusal.code === ErrorCode.HANDSHAKE_TIMEOUT && refusal.middleware === true

/**
 * What a resume is told when the resume of its session before it, on a server without middleware,
 * still held its turn at this one's `handshakeTimeout` (see `HandshakeMiddleware.wait`).
 */
export const turnTimedOut = (ms: number): Refusal => ({
  status: 503,
  code: ErrorCode.HANDSHAKE_TIMEOUT,
  message: `an earlier resume of this session did not end within ${ms} ms`,
  middleware: true,
})

/**
 * Runs at every handshake and every resume; throw (or reject) to refuse the client. `S` is the
 * socket it is given: a plain `Middleware`, as an application declares one apart from
 * `app.parley.use`, takes the socket of untyped events.
 */
export type Middleware<S = ServerSocket> = (socket: S) => void | Promise<void>

/**
 * The application's handshake middleware (`app.parley.use`), run at every handshake, every resume
 * and every takeover of a session from another node: apart from the server, so that each of
 * those runs it, and words its refusal, the same way.
 */
export class HandshakeMiddleware<S extends { readonly connected: boolean }> {
  readonly #log: FastifyBaseLogger
  readonly #middleware: Middleware<S>[] = []
  /** Handshakes a middleware refused with an error without a code of the application's: logged once per burst. */
  readonly #failures: BurstLog<{ err: unknown }>
  /** `handshakeTimeout`: the longest a run of the middleware holds a handshake. */
  readonly #timeoutMs: number
  /** Handshakes whose middleware did not settle within `#timeoutMs`: logged once per burst. */
  readonly #timeouts: BurstLog<{ code: string; handshakeTimeout: number }>
  /**
   * How each run still waiting for its middleware (or a resume for its turn) is answered at once
   * once the node begins to close (see `closeBegins`).
   */
  readonly #waiting = new Set<() => void>()
  /** True once the node began to close (see `ParleyServer.closeBegins`, `drain`). */
  readonly #closing: () => boolean

  constructor(log: FastifyBaseLogger, timeoutMs: number, closing: () => boolean) {
    this.#log = log
    this.#timeoutMs = timeoutMs
    this.#closing = closing
    this.#timeouts = new BurstLog(
      log,
      'warn',
      (count) =>
        `handshake middleware did not settle within handshakeTimeout for ${count} client(s) since the last such line; each was answered ${ErrorCode.HANDSHAKE_TIMEOUT} and tries again, and what the middleware does after that is ignored`,
    )
    this.#failures = new BurstLog(
      log,
      'error',
      (count) =>
        `handshake middleware failed for ${count} client(s) since the last such line, with an error without a code of the application's (a code is 1 to 64 of A-Z, 0-9 and _, and begins PARLEY_ only when it is one of Parley's wire codes; the first: its err); each was refused with ${ErrorCode.REFUSED} '${MIDDLEWARE_REFUSED}'`,
    )
  }

  /** Adds a middleware, run after those added before it. */
  add(middleware: Middleware<S>): void {
    this.#middleware.push(middleware)
  }

  /**
   * Runs the middleware in order; the first that throws refuses the client. One that
   * disconnects the socket ends the run too: the caller reads the session's state.
   *
   * The run is bounded by `handshakeTimeout`: a middleware that never settles (a database call
   * without a timeout of its own) would otherwise hold the handshake for good, the client seeing
   * only its own `connectTimeout` run out and the server saying nothing, and, on a resume, every
   * later resume of its session behind it (see `ResumeTurns`) until the session's recovery
   * window ends. Past the bound the client is answered PARLEY_HANDSHAKE_TIMEOUT, which it tries
   * again, and the caller turns the socket away as after a refusal, or ends the resume's turn, or
   * keeps a takeover's session without its client for that next try (see `Takeover.run`):
   * the middleware that settles later runs none after it, and what it decides is ignored (no
   * session opened, no refusal logged, the timeout counted once); what it does to the socket
   * then (a join) finds a socket that never opened; a resume's socket is the session's own,
   * live, and a join there stands.
   *
   * `gone` says the client left meanwhile (its WebSocket closed, its handshake POST aborted):
   * the middleware that settles then, within the bound, runs none after it either, so that an
   * application's later steps (a database write after the auth, say) do not run for a client
   * that is gone, and what it decides is ignored as at the bound, with a debug line alone; the
   * caller reads the transport and opens nothing.
   *
   * Not waited for at all once the node has begun to close: a run still under way then is
   * answered PARLEY_SERVER_SHUTTING_DOWN at that moment (see `closeBegins`), and one that would
   * begin later runs no middleware and is answered so at once. Whatever the middleware decides
   * then, a closing node's answer is that code: a new session is refused at close, a resume's
   * session is handed on by the drain or ended by the close (see `Hellos`), and a takeover's is
   * taken over without its client for the drain to hand on (see `Takeover.run`); the client tries
   * a live node, whose middleware judges it. Waited for, the run held its client for up to its
   * `handshakeTimeout` and then told it PARLEY_HANDSHAKE_TIMEOUT, which has it try again after its
   * backoff and reads as the application's fault, not the deploy's; a takeover's would hold the
   * drain besides, which waits for the takeovers under way no longer than `ARRIVALS_SHARE` of
   * `handoff.timeout`, and the session would end at close. What the
   * middleware does once it settles is ignored as after the bound, a throw too: what it met may
   * be the close itself (a database pool a close hook closed), and a 403 would stop for good a
   * client a deploy only moved.
   */
  async run(socket: S, gone: () => boolean = () => false): Promise<Refusal | null> {
    if (this.#middleware.length === 0) return null
    if (this.#closing()) return shuttingDown()
    return this.#run(socket, gone)
  }

  /**
   * The node began to close (the close's first moment, or `drain()`): every run still waiting for
   * its middleware, and every resume waiting for its turn, is answered at once (see `run`).
   */
  closeBegins(): void {
    this.#cutAll()
  }

  /**
   * Waits for `turn`: a resume's turn, which begins once the resumes of its session that came
   * before it are over (see `ResumeTurns`). Bounded as a run is, and answered as one past the
   * bound: the turns ahead, each bounded, did not end within this client's `handshakeTimeout`
   * (a line of them, retries of a client whose middleware is slow). Without middleware the turn
   * ahead waits only for its owner record (`OWNER_RECORD_WAIT_MS`), but the turns queue behind
   * one another, each adding its own wait: bounded all the same, so that no turn ahead holds
   * this one for good, and answered with the same code, its message saying what was slow (and
   * no line of the middleware's).
   */
  async wait(turn: Promise<void>): Promise<Refusal | null> {
    // As for a run (see `run`): after its turn, a resume at a closing node is answered so anyway.
    if (this.#closing()) return shuttingDown()
    const middleware = this.#middleware.length > 0
    return this.#bounded(
      () => turn.then(() => null),
      () => {},
      () => (middleware ? this.#timedOut() : turnTimedOut(this.#timeoutMs)),
    )
  }

  /** See `run`. */
  async #run(socket: S, gone: () => boolean): Promise<Refusal | null> {
    let expired = false
    return this.#bounded(
      () => this.#runAll(socket, () => expired, gone),
      () => {
        expired = true
      },
      () => this.#timedOut(),
    )
  }

  /** A run, or a wait behind one, past `handshakeTimeout`: counted on the burst's line. */
  #timedOut(): Refusal {
    this.#timeouts.record({ code: ErrorCode.HANDSHAKE_TIMEOUT, handshakeTimeout: this.#timeoutMs })
    return middlewareTimedOut(this.#timeoutMs)
  }

  /**
   * Races what `start` begins against `handshakeTimeout` and the beginning of the node's close:
   * the first to settle answers the handshake, `timedOut` at the bound. `expire` is told when the
   * bound or the close answered it.
   */
  async #bounded(
    start: () => Promise<Refusal | null>,
    expire: () => void,
    timedOut: () => Refusal,
  ): Promise<Refusal | null> {
    let timer: NodeJS.Timeout | undefined
    let cut: (() => void) | undefined
    const late = new Promise<Refusal>((resolve) => {
      timer = setTimeout(() => {
        expire()
        resolve(timedOut())
      }, this.#timeoutMs)
      // The request it answers holds the process, not this timer.
      timer.unref()
      // The node begins to close: its client tries another node now, rather than after the
      // bound, and the HTTP server's close does not wait for this request meanwhile.
      cut = () => {
        expire()
        resolve(shuttingDown())
      }
      this.#waiting.add(cut)
    })
    try {
      return await Promise.race([start(), late])
    } finally {
      clearTimeout(timer)
      if (cut) this.#waiting.delete(cut)
    }
  }

  /** Answers every run, and every wait for a turn, still under way (see `closeBegins`). */
  #cutAll(): void {
    for (const cut of this.#waiting) cut()
    this.#waiting.clear()
  }

  /**
   * The server closes: answers what is still under way (a close that skipped its first moment
   * included), logs the failures not logged yet, and keeps no timer (see `BurstLog.close`).
   */
  close(): void {
    this.#cutAll()
    this.#failures.close()
    this.#timeouts.close()
  }

  /**
   * See `run`; stops once `expired` (the client was answered) or `gone` (the client left), and
   * then refuses nothing more.
   */
  async #runAll(socket: S, expired: () => boolean, gone: () => boolean): Promise<Refusal | null> {
    for (const middleware of this.#middleware) {
      if (expired() || !socket.connected) break
      if (gone()) return this.#left()
      try {
        await middleware(socket)
      } catch (error) {
        // Too late: the client got its answer, at the bound (and the log its line) or as the node
        // began to close (a throw then may be the close itself: a database pool a close hook
        // closed, no verdict on the client, and nothing to log).
        if (expired()) return null
        // Nobody reads the refusal: a failure met while its client left says nothing alarming.
        if (gone()) return this.#left()
        return this.#refusedBy(error)
      }
    }
    return null
  }

  /** The client left while its middleware ran: the run ends, and the caller opens nothing. */
  #left(): null {
    logLine(
      this.#log,
      'debug',
      {},
      'parley: a client left during its handshake middleware, which ran no further',
    )
    return null
  }

  /**
   * A middleware refused a handshake with `error`. As for an event's middleware (see
   * `EventPipeline`), only an error with a code of the application's is a refusal meant for the
   * client: any other may come from a library (a database driver's, with its hosts or SQL), so
   * the client reads only MIDDLEWARE_REFUSED and the server logs the error, once per burst, since
   * a failure such as a database away meets every client that connects meanwhile.
   */
  #refusedBy(error: unknown): Refusal {
    if (hasAppCode(error)) {
      logLine(this.#log, 'debug', { err: error }, 'parley: middleware refused a handshake')
      const refusal = refusalOf(error, ErrorCode.REFUSED, MIDDLEWARE_REFUSED)
      // A busy node's code (the application's own admission check: full, or going away) turns
      // the session away for now, not the client: 503, as the server's own PARLEY_SERVER_FULL
      // and PARLEY_SERVER_SHUTTING_DOWN are, which every client tries again. In a 403, the status
      // of a refusal, a client that reads the status alone would stop for good.
      return { status: isBusyCode(refusal.code) ? 503 : 403, ...refusal }
    }
    this.#failures.record({ err: error })
    return { status: 403, code: ErrorCode.REFUSED, message: MIDDLEWARE_REFUSED }
  }
}
