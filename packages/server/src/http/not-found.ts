import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import { ParleyOptionError } from '../options.js'
import { maskSessionIds, redactingRequestSerializer } from './log-redaction.js'

/*
 * A URL under Parley's path that no route serves (a mistyped endpoint, `/parley/pol?sid=...`)
 * still carries whatever session id the client put in it. Fastify answers it with its default
 * 404 and logs it with the application's serializer, the URL whole: its `incoming request` line
 * and its `Route GET:... not found` line would write a live secret into the application's logs.
 * So Parley gives its own path a 404 context of its own: Fastify's default handler, which
 * answers and logs as Fastify does (the application's `logController` or
 * `disableRequestLogging` deciding), with request loggers that mask the session id in both
 * lines (see log-redaction.ts). Elsewhere the URLs are the application's, and so are their
 * 404s; with `path: '/'` every URL would be, so Parley then leaves them all alone.
 */

/** The log methods whose string arguments are masked. */
const LEVELS = new Set<PropertyKey>(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])

/**
 * Fastify's `setNotFoundHandler` called without a handler: its default 404 (what Fastify sets
 * for its root the same way), which the types leave out.
 */
type DefaultNotFound = (this: FastifyInstance) => FastifyInstance

/** Registers the 404 answer of the URLs under `base` (`mountBase`), when there is a base. */
export async function notFoundUnder(app: FastifyInstance, base: string): Promise<void> {
  if (base === '') return
  const setDefault = app.setNotFoundHandler as unknown as DefaultNotFound
  await app.register(
    async (scope) => {
      // Parley registered in a prefixed context serves its path under that prefix, joined as
      // Fastify joins them (`/api/` and `/parley` make `/api/parley`): the scope's own prefix.
      refuseHandlersAt(app, base, scope.prefix)
      const masked = redactingRequestSerializer(scope.log)
      const inherited = scope.childLoggerFactory
      // The 404 context takes no `logSerializers`: its request loggers are made masking here.
      scope.setChildLoggerFactory(function (this: FastifyInstance, logger, bindings, options, request) {
        const serializers = { ...options.serializers, req: masked }
        const child = inherited.call(this, logger, bindings, { ...options, serializers }, request)
        return masking(child, request.url ?? '')
      })
      setDefault.call(scope)
    },
    { prefix: base },
  )
}

/**
 * Fastify takes one not-found handler per prefix, and a second one for `base` would fail the
 * application's start with no word of why (its plugin timeout, or no start at all with none):
 * the application's `setNotFoundHandler` in a context prefixed with Parley's path is refused at
 * once, saying what to do. Only the context Parley is registered in and those registered in it
 * afterwards inherit this guard: one registered before, or a sibling, is out of its reach.
 */
function refuseHandlersAt(app: FastifyInstance, base: string, at: string): void {
  const set = app.setNotFoundHandler
  const guarded = function (this: FastifyInstance, ...args: unknown[]): unknown {
    if (this.prefix === at || this.prefix === `${at}/`) {
      throw new ParleyOptionError(
        'path',
        `is "${base}"${app.prefix === '' ? '' : ` (under "${app.prefix}")`}, where Parley answers the URLs no endpoint serves: set your not-found handler for another prefix, or give Parley another path`,
      )
    }
    return Reflect.apply(set, this, args)
  }
  app.setNotFoundHandler = guarded as typeof set
}

/**
 * `logger` with the session ids masked in the strings it is given: the `Route ... not found`
 * message holds the URL itself (`url`, the request's), which no serializer sees. Its children
 * mask too.
 */
function masking(logger: FastifyBaseLogger, url: string): FastifyBaseLogger {
  return new Proxy(logger, {
    get(target, key) {
      const value: unknown = Reflect.get(target, key, target)
      if (typeof value !== 'function') return value
      if (key === 'child') {
        return (...args: Parameters<FastifyBaseLogger['child']>) => masking(target.child(...args), url)
      }
      if (!LEVELS.has(key)) return value
      return (...args: unknown[]) =>
        Reflect.apply(
          value,
          target,
          args.map((arg) => (typeof arg === 'string' ? maskText(arg, url) : arg)),
        )
    },
    set: (target, key, value) => Reflect.set(target, key, value, target),
  })
}

/**
 * `text` with the session ids masked: wherever it holds the request's URL, that URL masked whole
 * (its sid value running to the next `&`, whatever it holds); in the rest, each word. A URL is
 * found by its text, not cut at whitespace: an HTTP/2 `:path` may carry a byte Node reads as
 * U+00A0, which is whitespace to a pattern, and the sid after it would be logged as a word of its
 * own.
 */
function maskText(text: string, url: string): string {
  if (!text.includes('=')) return text
  if (url === '' || !text.includes(url)) return maskWords(text)
  return text.split(url).map(maskWords).join(maskSessionIds(url))
}

/**
 * `text` with the session ids masked in each of its words: a message puts words after a URL
 * (`... not found`), so a value is taken to end at the first whitespace.
 */
function maskWords(text: string): string {
  return text.includes('=') ? text.replace(/\S+/g, (word) => maskSessionIds(word)) : text
}
