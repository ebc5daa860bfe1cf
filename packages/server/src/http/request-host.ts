import type { IncomingHttpHeaders } from 'node:http'

/**
 * The request's Host: its `host` header, or over HTTP/2 its `:authority`, which an h2 client
 * sends in its place (RFC 9113, 8.3.1), as Fastify's `request.host` reads it.
 */
export function requestHost(headers: IncomingHttpHeaders): string | undefined {
  const host = headers.host ?? headers[':authority']
  return typeof host === 'string' ? host : undefined
}

/**
 * Whether `name` is one of HTTP/2's pseudo-headers (`:method`, `:path`, `:authority`, ...): part
 * of the request line there, no header of HTTP/1.1, whose clients refuse the name.
 */
export function isPseudoHeader(name: string): boolean {
  return name.startsWith(':')
}
