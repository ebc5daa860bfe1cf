import type { FastifyReply } from 'fastify'
import type { HeaderBag } from '../transports/http.js'

/**
 * Answers `reply` with `status`, `headers` and `body`: through Fastify (the application's
 * `onSend` hooks and all), or on the raw response when the reply was taken from Fastify because
 * its handlerTimeout ran out while the request waited on another node (the owner's lookup, or
 * the owner itself, which could then not be reached: see handler-timeout.ts): the same answer,
 * with the headers already set on the reply (`Connection: close`, `Allow`, and those of the
 * application's hooks before the handler), but none that its `onSend` hooks would add: Fastify
 * runs them only through its own internals, which a hijacked reply leaves (docs/scaling.md
 * says so to operators). Nothing when it was answered already: by Fastify
 * (the application's handlerTimeout), or by the owner.
 */
export function answer(
  reply: FastifyReply,
  status: number,
  headers: HeaderBag,
  type: string,
  body: string | undefined,
): FastifyReply {
  const res = reply.raw
  if (!reply.sent) return reply.code(status).headers(headers).type(type).send(body)
  if (res.headersSent || res.destroyed) return reply
  const raw: Record<string, string | number | string[]> = {}
  for (const [name, value] of Object.entries({ ...reply.getHeaders(), ...headers })) {
    if (value !== undefined) raw[name.toLowerCase()] = value
  }
  raw['content-type'] = type
  raw['content-length'] = Buffer.byteLength(body ?? '')
  res.writeHead(status, raw)
  res.end(body)
  return reply
}
