import type { EventEmitter } from 'node:events'
import type { Http2Session } from 'node:http2'

/**
 * Lets a closing HTTP/2 server let go of its clients' connections, as `IdleConnections` does for
 * HTTP/1.1 ones.
 *
 * Node's `close()` of an HTTP/2 server stops accepting connections but, before Node 24, leaves
 * open the sessions it has: a browser keeps its connection to the page's server open (for some
 * 70 s of silence, Fastify's `http2SessionTimeout`), and a client that tries again after the
 * CLOSE 'server shutdown' sends its requests on that connection, each answered 503 by the
 * closing Fastify, so it never falls silent. `app.close()` would wait for it. From
 * `startClosing()` on, each session is closed gracefully: a GOAWAY, the streams under way
 * finished first (the last answers), no new stream taken. A client then needs a new connection,
 * which the closed server no longer accepts.
 */
export class Http2Sessions {
  readonly #open = new Set<Http2Session>()
  #closing = false

  /** Listens on any server: only HTTP/2 ones emit `session` (HTTP/1.1 ones do nothing here). */
  constructor(server: EventEmitter) {
    server.on('session', (session: Http2Session) => {
      if (this.#closing) {
        session.close()
        return
      }
      this.#open.add(session)
      session.once('close', () => this.#open.delete(session))
    })
  }

  /** Closes every session once its streams are done, and each one that comes after. */
  startClosing(): void {
    this.#closing = true
    for (const session of this.#open) session.close()
    this.#open.clear()
  }
}
