import type { ServerResponse } from 'node:http'

/**
 * Whether the client of `res` has left: the response destroyed, over HTTP/1.1; over HTTP/2, its
 * stream. Node's compatibility response, which Fastify's `reply.raw` is there, has no
 * `destroyed`, and its `close` came with the stream's: a listener put on it afterwards never
 * hears it.
 */
export function clientLeft(res: ServerResponse): boolean {
  if (res.destroyed) return true
  const stream: unknown = (res as { stream?: unknown }).stream
  return typeof stream === 'object' && stream !== null && 'destroyed' in stream && stream.destroyed === true
}
