import type { EventEmitter } from 'node:events'
import type { Http2Session, ServerHttp2Stream } from 'node:http2'

/**
 * Lets a closing HTTP/2 server let go of its clients' connections, as `IdleConnections` does for
 * HTTP/1.1 ones.
 *
 * Node's `close()` of an HTTP/2 server stops accepting connections but, before Node 24, leaves
 * open the sessions it has: a browser keeps its connection to the page's server open (for some
 * 70 s of silence, Fastify's `http2SessionTimeout`), and a client that tries again after the
 * CLOSE 'server shutdown' sends its requests on that connection, each answered 503 by the
 * closing Fastify, so it never falls silent. `app.close()` would wait for it. From
 * `startClosing()` on, each session is closed gracefully: a GOAWAY, no new stream taken, the
 * streams under way answered first. A stream whose answer is out already but whose client has
 * not ended its own side (a request body that never ends, an extended CONNECT refused) is closed
 * (RST_STREAM, no error, as RFC 9113 allows once the answer is complete): the graceful close
 * would wait for it for ever. A client then needs a new connection, which the closed server no
 * longer accepts.
 */
export class Http2Sessions {
  readonly #sessions = new Set<Http2Session>()
  /** Streams not closed yet: one shared `close` listener each, no closure. */
  readonly #streams = new Set<ServerHttp2Stream>()
  #closing = false

  /** Listens on any server: only HTTP/2 ones emit `session` and `stream`. */
  constructor(server: EventEmitter) {
    const sessions = this.#sessions
    const streams = this.#streams
    const sessionClosed = function (this: Http2Session) {
      sessions.delete(this)
    }
    const streamClosed = function (this: ServerHttp2Stream) {
      streams.delete(this)
    }
    server.on('session', (session: Http2Session) => {
      if (this.#closing) {
        session.close()
        return
      }
      sessions.add(session)
      session.once('close', sessionClosed)
    })
    server.on('stream', (stream: ServerHttp2Stream) => {
      streams.add(stream)
      stream.once('close', streamClosed)
    })
  }

  /** Closes every session once its streams are answered, and each one that comes after. */
  startClosing(): void {
    this.#closing = true
    for (const stream of this.#streams) if (answered(stream)) stream.close()
    for (const session of this.#sessions) session.close()
    this.#sessions.clear()
  }
}

/**
 * Whether the stream's answer is all sent: its END_STREAM went out (nghttp2 marks the stream shut
 * for writing only once that frame is sent, while `finish` comes when it is queued: a reset then
 * could drop the end of the answer).
 */
function answered(stream: ServerHttp2Stream): boolean {
  return !stream.closed && stream.state.localClose === 1
}
