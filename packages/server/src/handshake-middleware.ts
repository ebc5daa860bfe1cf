import { ErrorCode } from '@parley/protocol'
import type { FastifyBaseLogger } from 'fastify'
import { BurstLog, logLine } from './burst-log.js'
import { hasAppCode, MIDDLEWARE_REFUSED, refusalOf } from './incoming.js'
import type { Refusal } from './refusals.js'

/** Runs at every handshake and every resume; throw (or reject) to refuse the client. */
export type Middleware<S> = (socket: S) => void | Promise<void>

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

  constructor(log: FastifyBaseLogger) {
    this.#log = log
    this.#failures = new BurstLog(
      log,
      'error',
      (count) =>
        `handshake middleware failed for ${count} client(s) since the last such line, with an error without a code of the application's (a code is 1 to 64 of A-Z, 0-9 and _; the first: its err); each was refused with ${ErrorCode.REFUSED} '${MIDDLEWARE_REFUSED}'`,
    )
  }

  /** Adds a middleware, run after those added before it. */
  add(middleware: Middleware<S>): void {
    this.#middleware.push(middleware)
  }

  /**
   * Runs the middleware in order; the first that throws refuses the client. One that
   * disconnects the socket ends the run too: the caller reads the session's state.
   */
  async run(socket: S): Promise<Refusal | null> {
    for (const middleware of this.#middleware) {
      if (!socket.connected) break
      try {
        await middleware(socket)
      } catch (error) {
        return this.#refusedBy(error)
      }
    }
    return null
  }

  /** The server closes: logs the failures not logged yet, and keeps no timer (see `BurstLog.close`). */
  close(): void {
    this.#failures.close()
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
      return { status: 403, ...refusalOf(error, ErrorCode.REFUSED, MIDDLEWARE_REFUSED) }
    }
    this.#failures.record({ err: error })
    return { status: 403, code: ErrorCode.REFUSED, message: MIDDLEWARE_REFUSED }
  }
}
