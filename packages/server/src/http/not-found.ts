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

/**
 * The most slashes put before Parley's path, past its own, whose URLs get its masked 404: one is
 * what a client whose URL ends in `/` asks for once `/parley` is joined to it, two one whose URL
 * ends in `//`. Fastify's 404 router takes a prefix as it is written, `//parley` only for two
 * slashes and no more, so each count is a prefix of its own, and past a few there are no such
 * clients to meet.
 */
const EXTRA_SLASHES = 3

/**
 * Registers the 404 answer of the URLs under `base` (`mountBase`), when there is a base; and of
 * those under `base` with 1 to `EXTRA_SLASHES` more slashes before it (`//parley/...`,
 * `///parley/...`: see `EXTRA_SLASHES`). Those reach no endpoint (Fastify's router does not
 * take `//` for `/` unless the application says so), and without a context of their own would
 * fall to the application's 404, logged with the sid whole, though they are Parley's. Only
 * where Parley's context reaches: under a prefix of Fastify's (`/api`), the slashes of a client
 * that puts them before it (`//api/parley/...`) meet the 404 of a context above Parley's.
 */
export async function notFoundUnder(app: FastifyInstance, base: string): Promise<void> {
  if (base === '') return
  await maskedNotFound(app, base, base, true)
  for (let extra = 1; extra <= EXTRA_SLASHES; extra++) {
    await maskedNotFound(app, base, `${'/'.repeat(extra)}${base}`, false)
  }
}

/**
 * Fastify's default 404 for the URLs under `prefix`, logged with the session ids masked; `own`:
 * `prefix` is `base` itself, where the application's not-found handlers are refused.
 */
async function maskedNotFound(
  app: FastifyInstance,
  base: string,
  prefix: string,
  own: boolean,
): Promise<void> {
  const setDefault = app.setNotFoundHandler as unknown as DefaultNotFound
  await app.register(
    async (scope) => {
      // Parley registered in a prefixed context serves its path under that prefix, joined as
      // Fastify joins them (`/api/` and `/parley` make `/api/parley`): the scope's own prefix.
      if (own) refuseHandlersAt(app, base, scope.prefix)
      const masked = redactingRequestSerializer(scope.log)
      const inherited = scope.childLoggerFactory
      // The 404 context takes no `logSerializers`: its request loggers are made masking here.
      scope.setChildLoggerFactory(function (this: FastifyInstance, logger, bindings, options, request) {
        const serializers = { ...options.serializers, req: masked }
        const child = inherited.call(this, logger, bindings, { ...options, serializers }, request)
        return masking(child, request.url ?? '')
      })
      failingClearly(
        scope,
        () => setDefault.call(scope),
        (cause) => takenBefore(app, base, cause),
      )
    },
    { prefix },
  )
}

/** Fastify's `after` callback in the form it gives its own: done with once its work is over. */
type Deferred = (err: Error | null, done: (err?: Error | null) => void) => void

/**
 * Runs `register` (Parley's `setNotFoundHandler`) with the part Fastify defers caught. Fastify
 * adds a not-found handler to its 404 router in an `after` callback, and a handler the
 * application already set for the same prefix (before Parley, or in a context loaded before
 * Parley's) makes the router throw there, where nothing catches it: the process dies of a
 * router message (`Method 'ACL' already declared for route '/parley/*'`), or, under a handler
 * of uncaught exceptions, the start waits for the plugin timeout. Caught, it fails the start
 * with `refusal`, which says what to do. A Fastify that defers otherwise is left as it is.
 */
function failingClearly(
  scope: FastifyInstance,
  register: () => void,
  refusal: (cause: unknown) => Error,
): void {
  const after = scope.after
  const own = Object.getOwnPropertyDescriptor(scope, 'after')
  const guarded = function (this: FastifyInstance, callback?: Deferred): unknown {
    if (typeof callback !== 'function' || callback.length !== 2) return Reflect.apply(after, this, [callback])
    // Two parameters: avvio hands it `done` (it reads the callback's length).
    const caught: Deferred = (err, done) => {
      try {
        callback(err, done)
      } catch (cause) {
        done(refusal(cause))
      }
    }
    return Reflect.apply(after, this, [caught])
  }
  scope.after = guarded as typeof after
  try {
    register()
  } finally {
    // The scope's `after` as it was: inherited (Fastify's way), or its own.
    if (own) Object.defineProperty(scope, 'after', own)
    else Reflect.deleteProperty(scope, 'after')
  }
}

/** The error of a start where the application set a not-found handler for `base` before Parley. */
function takenBefore(app: FastifyInstance, base: string, cause: unknown): ParleyOptionError {
  return new ParleyOptionError(
    'path',
    `is "${base}"${app.prefix === '' ? '' : ` (under "${app.prefix}")`}, where Parley answers the URLs no endpoint serves, and the application set a not-found handler for that prefix before Parley: set your not-found handler for another prefix, or give Parley another path`,
    { cause },
  )
}

/**
 * Fastify takes one not-found handler per prefix, and a second one for `base` would fail the
 * application's start with no word of why (its plugin timeout, or no start at all with none):
 * the application's `setNotFoundHandler` in a context prefixed with Parley's path is refused at
 * once, saying what to do. Only the context Parley is registered in and those registered in it
 * afterwards inherit this guard. A handler set before Parley makes Parley's own fail (see
 * `failingClearly`); one set after it in a sibling context (of Parley's context, loaded after
 * it) is out of reach: Fastify tells a plugin nothing of its siblings, and its router's error
 * there is thrown where nothing catches it.
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
