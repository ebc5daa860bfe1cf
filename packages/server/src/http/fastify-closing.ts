import type { IncomingMessage } from 'node:http'
import type { FastifyInstance } from 'fastify'
import { rootOf } from './boot-outcome.js'

/** What Fastify keeps the options it was created with under (a symbol of its own, not registered). */
const OPTIONS_SYMBOL = 'fastify.options'

/** What Fastify keeps an instance's Request class under, likewise. */
const REQUEST_SYMBOL = 'fastify.Request'

/**
 * Whether Fastify answers every request itself, from the first moment of `app.close()`, with a
 * bare 503 (no code, no CORS headers), before any route or hook runs: its `return503OnClosing`,
 * on unless the app was created with it false. Fastify keeps the option to itself
 * (`initialConfig` leaves it out), and what a closing plugin must do depends on it: with it on,
 * no route of Parley's can answer until Fastify has closed; with it off, the routes keep serving
 * the drain. So it is read from the options the instance keeps, as Fastify reads it.
 * Undefined when they cannot be found (a Fastify that keeps them elsewhere): the caller then
 * assumes nothing. A test holds this to the Fastify installed.
 */
export function refusesWhileClosing(app: FastifyInstance): boolean | undefined {
  const options = fastifyOwn(app, OPTIONS_SYMBOL)
  if (typeof options !== 'object' || options === null) return undefined
  return Object.hasOwn(options, 'return503OnClosing')
    ? Boolean((options as { return503OnClosing?: unknown }).return503OnClosing)
    : true
}

/**
 * Has `begin` run at the first moment of `app.close()`: before Fastify refuses requests (its
 * `return503OnClosing`) and before any preClose hook, those an application added ahead of
 * Parley's included, which Fastify runs first. Fastify does its own part of a close (the
 * refusals, the preClose hooks, the HTTP server's close) in an onClose callback it gives avvio
 * once its plugins have loaded, and avvio runs onClose callbacks last given first: one given after
 * that (from an onReady hook) runs before it. `addHook('onClose')` cannot be called then (the
 * instance has started, Fastify refuses it), so avvio's own `onClose`, which Fastify leaves on
 * the instance (untyped), is. False when the instance has none (a Fastify that closes otherwise):
 * the caller then does it in its preClose hook, in its turn. Were Fastify's own callback given
 * later one day, `begin` would run after the preClose hooks: the caller's preClose hook has done
 * it by then, and `begin` must be safe to call twice. A test holds this to the Fastify installed.
 * What `begin` throws rejects `app.close()`, as a failing onClose hook does, rather than end the
 * process (avvio would throw it out of its queue).
 */
export function atCloseStart(app: FastifyInstance, begin: () => void): boolean {
  const onClose: unknown = (app as { onClose?: unknown }).onClose
  if (typeof onClose !== 'function') return false
  onClose.call(app, async () => begin())
  return true
}

/**
 * What the `rewriteUrl` of each Fastify instance (by its root) made of each request, for as long as
 * the request lives: every mount point closing on a server judges the server's requests in turn
 * (see takeovers.ts), and the application's rewrite, which may count or log what it sees, is
 * called once for them all, as Fastify calls it once.
 */
const rewritten = new WeakMap<object, WeakMap<IncomingMessage, string | undefined>>()

/** A request's URL as the application's router reads it (see `routedUrl`). */
export type UrlOf = (req: IncomingMessage) => string | undefined

/**
 * The URL of a request as the application's router reads it: what its `rewriteUrl` makes of it,
 * as Fastify calls it (on the root instance, before routing), or the URL as written without one.
 * For what Parley answers itself at close, before Fastify, whose bare 503 would answer a URL
 * only the rewrite brings to the endpoints. Fastify keeps `rewriteUrl` to itself (`initialConfig`
 * leaves it out): it is read from the options the instance keeps, as `refusesWhileClosing` reads
 * its option; where they cannot be found, the URL as written. A rewrite that throws, or gives no
 * string (Fastify then destroys the request), leaves the URL as written: Parley answers what its
 * endpoints are written at, and leaves the rest to Fastify. Called once per request for all the
 * mount points of the instance, however many judge it (see `rewritten`); Fastify calls the
 * rewrite again for a request Parley leaves it.
 */
export function routedUrl(app: FastifyInstance): UrlOf {
  const options = fastifyOwn(app, OPTIONS_SYMBOL)
  const rewrite: unknown =
    typeof options === 'object' && options !== null
      ? (options as { rewriteUrl?: unknown }).rewriteUrl
      : undefined
  if (typeof rewrite !== 'function') return (req) => req.url
  const root = rootOf(app)
  const kept = rewritten.get(root) ?? new WeakMap<IncomingMessage, string | undefined>()
  rewritten.set(root, kept)
  return (req) => {
    if (kept.has(req)) return kept.get(req)
    let url: string | undefined
    try {
      const given: unknown = rewrite.call(root, req)
      url = typeof given === 'string' ? given : req.url
    } catch {
      url = req.url
    }
    kept.set(req, url)
    return url
  }
}

/** The address of a request's client, as Fastify's `request.ip` gives it (see `clientAddress`). */
export type AddressOf = (req: IncomingMessage) => string | undefined

/**
 * The client's address of a request that no route took (one that reached the server while
 * Fastify refuses requests at close, see last-words.ts), as Fastify's `request.ip` would give it
 * on a route: behind a proxy the application trusts (Fastify's `trustProxy`), the address its
 * X-Forwarded-For names, so that what a node hands on about the client (to the node that holds
 * its session) names the same client however the request came. Fastify keeps `trustProxy` to
 * itself, with the getter that reads it on its Request class: that getter is used, on the raw
 * request. The connection's address when the class cannot be found (a Fastify that keeps it
 * elsewhere), or when the getter throws (a trustProxy function of the application's). A test
 * holds this to the Fastify installed.
 */
export function clientAddress(app: FastifyInstance): AddressOf {
  const request = fastifyOwn(app, REQUEST_SYMBOL)
  const prototype: unknown = typeof request === 'function' ? request.prototype : undefined
  let ip: PropertyDescriptor['get']
  for (let object = prototype; typeof object === 'object' && object !== null && !ip; ) {
    ip = Object.getOwnPropertyDescriptor(object, 'ip')?.get
    object = Object.getPrototypeOf(object)
  }
  // `req.socket` is missing from an upgrade that `app.injectWS` makes (no connection under it).
  if (!ip) return (req) => req.socket?.remoteAddress
  const getter = ip
  return (req) => {
    let ip: unknown
    try {
      // As Fastify's request reads it: the raw request, and its socket through it.
      ip = getter.call(Object.create(prototype as object, { raw: { value: req } }))
    } catch {
      // A trustProxy function of the application's may throw on what X-Forwarded-For names (the
      // client writes it): a route's request.ip would fail its request; here, where no route
      // runs (an upgrade's listener among them), it would end the process.
    }
    return typeof ip === 'string' ? ip : req.socket?.remoteAddress
  }
}

/**
 * What Fastify keeps on `app` under the symbol described `description`; an encapsulated
 * instance inherits it from its parent's.
 */
function fastifyOwn(app: FastifyInstance, description: string): unknown {
  for (let object: object | null = app; object !== null; object = Object.getPrototypeOf(object)) {
    const key = Object.getOwnPropertySymbols(object).find((symbol) => symbol.description === description)
    if (key !== undefined) return (object as Record<symbol, unknown>)[key]
  }
  return undefined
}
