import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'
import type { ForwardedRequest } from './forwarded-request.js'
import { isPseudoHeader, requestHost } from './request-host.js'
import { ROUTED_HEADER, type RoutedMark, SENT_TO_HEADER } from './routing.js'

/** Headers of one hop (RFC 9110 7.6.1), never copied from one connection to the next. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
])

/** Made again by the WebSocket client that opens the next hop. */
const WEBSOCKET_HANDSHAKE = /^sec-websocket-/

/**
 * The headers a request is forwarded with: the client's end-to-end headers as received (Host
 * and Origin included, so that the owner's origin check sees what this node saw), without the
 * hop-by-hop ones, `content-length` (the body is sent again), or the WebSocket handshake's own;
 * from an HTTP/2 client, none of its pseudo-headers, its `:authority` as Host (the next hop is
 * HTTP/1.1); `x-forwarded-for`, `-proto` and `-host` when the client's request had none; and the routed
 * mark (`mark`, one of `RoutedMark`: `SENT_ON`, `TOO_LARGE`, `GOODBYE`), so that the owner
 * answers it itself.
 */
export function forwardedHeaders(
  request: ForwardedRequest,
  websocket = false,
  mark: RoutedMark = '1',
): OutgoingHttpHeaders {
  const received = request.headers
  const named = connectionTokens(received.connection)
  const headers: OutgoingHttpHeaders = {}
  for (const [name, value] of Object.entries(received)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name) || isPseudoHeader(name)) continue
    // The marks are this node's to set (see `HttpForwards`), never the client's to pass on.
    if (name === 'content-length' || name === ROUTED_HEADER || name === SENT_TO_HEADER) continue
    if (websocket && WEBSOCKET_HANDSHAKE.test(name)) continue
    headers[name] = value
  }
  // A client already gone has no address left to tell.
  if (typeof request.ip === 'string') headers['x-forwarded-for'] ??= request.ip
  headers['x-forwarded-proto'] ??= request.protocol
  const host = requestHost(received)
  if (host !== undefined) {
    headers.host ??= host
    headers['x-forwarded-host'] ??= host
  }
  headers[ROUTED_HEADER] = mark
  return headers
}

/** The owner's answer headers for the client: all but the hop-by-hop ones. */
export function answerHeaders(received: IncomingHttpHeaders): OutgoingHttpHeaders {
  const named = connectionTokens(received.connection)
  const headers: OutgoingHttpHeaders = {}
  for (const [name, value] of Object.entries(received)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name)) continue
    headers[name] = value
  }
  return headers
}

/** Header names that a `Connection` header lists: hop-by-hop too. */
function connectionTokens(value: string | undefined): Set<string> {
  if (!value) return new Set()
  return new Set(value.split(',').map((token) => token.trim().toLowerCase()))
}
