import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'

/**
 * What forwarding reads of the client's request: Fastify's, or one that reached the node while
 * Fastify refuses requests at close (see `rawForwardedRequest`).
 */
export interface ForwardedRequest {
  method: string
  /** The path and query string, as the client sent them. */
  url: string
  headers: IncomingHttpHeaders
  /** The client's address; undefined once it is gone. */
  ip: string | undefined
  protocol: 'http' | 'https'
  raw: IncomingMessage
}

/**
 * `req` as forwarding reads it, for a request no route of Fastify's took (see last-words.ts);
 * `ip`: its client's address, as Fastify's `request.ip` would give it (see `clientAddress`).
 */
export function rawForwardedRequest(req: IncomingMessage, ip: string | undefined): ForwardedRequest {
  return {
    method: req.method ?? 'GET',
    url: req.url ?? '',
    headers: req.headers,
    ip,
    // No socket under an upgrade that `app.injectWS` makes (@fastify/websocket): no connection,
    // no TLS.
    protocol: isEncrypted(req.socket as IncomingMessage['socket'] | undefined) ? 'https' : 'http',
    raw: req,
  }
}

function isEncrypted(socket: IncomingMessage['socket'] | undefined): boolean {
  return socket !== undefined && 'encrypted' in socket && socket.encrypted === true
}
