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
