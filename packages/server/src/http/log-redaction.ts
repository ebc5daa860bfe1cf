import type { FastifyBaseLogger, FastifyRequest } from 'fastify'

/*
 * The SSE and polling endpoints carry the session id in their query string (`?v=1&sid=...`), and
 * the session id is a bearer secret: whoever holds it can resume the session. Fastify logs each
 * request's URL (`incoming request`, and errors with their request), so with a logger on, every
 * poll would write a live secret into the application's logs. Parley's routes log the URL with
 * the session id cut to its first six characters, enough to follow one session through the logs.
 */

/** pino keeps a logger's serializers under this registered symbol. */
const PINO_SERIALIZERS = Symbol.for('pino.serializers')

type RequestSerializer = (request: FastifyRequest) => unknown

/**
 * A query key and its `=`: after a `?`, a `#` (the router's query begins at the first of the two,
 * and Node takes a `#` in a request's target), a `;` or an `&`. A `;` begins the query too where
 * the application turned Fastify's `useSemicolonDelimiter` on; it is taken as a key's start
 * whether or not it did, as the option lives in two places of Fastify's config (one of them
 * deprecated): a `;sid=` the router does not read is only masked for nothing, in a log line,
 * while one it reads would be a live secret logged whole. No key the parser reads as `sid` holds
 * a `;` of its own, so none is missed by ending keys there.
 */
const QUERY_KEY = /[?#&;]([^=?#&;]*)=/g

/**
 * Every value of a `sid` key in `text`, past its first six characters, replaced by `...`. The key
 * is matched as the query parser reads it (`%73id` and `s%69d` are `sid` too), and the value runs
 * to the next `&`, a `#` in it included, as the parser reads it.
 */
export function maskSessionIds(text: string): string {
  if (!text.includes('=')) return text
  let masked = ''
  let done = 0
  for (const match of text.matchAll(QUERY_KEY)) {
    if (match.index < done || decodedKey(match[1]!) !== 'sid') continue
    const start = match.index + match[0].length
    const next = text.indexOf('&', start)
    const end = next < 0 ? text.length : next
    masked += `${text.slice(done, start)}${text.slice(start, Math.min(start + 6, end))}...`
    done = end
  }
  return masked + text.slice(done)
}

/** `key` as Fastify's query parser decodes it: `+` is a space, then percent-decoding when valid. */
function decodedKey(key: string): string {
  const spaced = key.replaceAll('+', ' ')
  if (!spaced.includes('%')) return spaced
  try {
    return decodeURIComponent(spaced)
  } catch {
    return spaced
  }
}

/** What Fastify's own serializer logs of a request. */
const fastifyShape: RequestSerializer = (request) => ({
  method: request.method,
  url: request.url,
  version: request.headers['accept-version'],
  host: request.host,
  remoteAddress: request.ip,
  remotePort: request.socket?.remotePort,
})

/**
 * The `req` serializer for Parley's routes: the one the application's logger has (Fastify's, or
 * its own), with session ids masked in every string it gives. A route's serializer replaces the
 * logger's, hence the call to it; a logger that is not pino gets Fastify's shape.
 */
export function redactingRequestSerializer(log: FastifyBaseLogger): RequestSerializer {
  const own = (log as unknown as Record<symbol, { req?: unknown } | undefined>)[PINO_SERIALIZERS]?.req
  const serialize = typeof own === 'function' ? (own as RequestSerializer) : fastifyShape
  return (request) => {
    const logged = serialize(request)
    if (typeof logged === 'string') return maskSessionIds(logged)
    if (typeof logged !== 'object' || logged === null) return logged
    const masked: Record<string, unknown> = { ...logged }
    for (const [key, value] of Object.entries(masked)) {
      if (typeof value === 'string') masked[key] = maskSessionIds(value)
    }
    return masked
  }
}
