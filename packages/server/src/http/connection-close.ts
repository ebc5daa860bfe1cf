import type { IncomingMessage } from 'node:http'

/**
 * Whether an answer to `req` may end its connection: over HTTP/1.1 (or a request of `inject`'s).
 * Not over HTTP/2, whose connection carries the client's other streams: an answer ends its own
 * stream, and the rest of a body sent after it comes on that stream alone (flow control holds
 * the client back; the GOAWAY at close resets a stream already answered, see
 * http2-sessions.ts).
 */
export function endsConnection(req: Pick<IncomingMessage, 'httpVersionMajor'> | undefined): boolean {
  return req?.httpVersionMajor !== 2
}

/**
 * `Connection: close` for an answer that ends its connection (see `endsConnection`); none over
 * HTTP/2, which has no connection-specific headers (RFC 9113, 8.2.2: Node warns and drops one).
 */
export function connectionClose(req: Pick<IncomingMessage, 'httpVersionMajor'> | undefined): {
  Connection?: 'close'
} {
  return endsConnection(req) ? { Connection: 'close' } : {}
}

/**
 * The requests a closing instance answers while an instance restarted at its path (its successor)
 * serves the server's other requests there (see `LastWordsAtClose`): their connections are that
 * one's to serve next, the requests pipelined behind them included, and to end at its own close.
 */
const keptForSuccessor = new WeakSet<object>()

/** `req`'s connection outlives the answer a closing instance gives it: a successor serves it next. */
export function keepForSuccessor(req: object): void {
  keptForSuccessor.add(req)
}

/**
 * `Connection: close` for an answer a closing instance gives (see `connectionClose`), but when a
 * successor serves the connection's next requests (`keepForSuccessor`). An answer that leaves a
 * body unread ends its connection all the same, whoever serves it next: the rest of that body
 * would be read as its next request.
 */
export function closingConnection(req: Pick<IncomingMessage, 'httpVersionMajor'> | undefined): {
  Connection?: 'close'
} {
  return req !== undefined && keptForSuccessor.has(req) ? {} : connectionClose(req)
}

/** Whether a closing instance's answer to `req` ends its connection (see `closingConnection`). */
export function closingEndsConnection(req: Pick<IncomingMessage, 'httpVersionMajor'> | undefined): boolean {
  return closingConnection(req).Connection === 'close'
}
