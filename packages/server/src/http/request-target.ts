/*
 * A request's target as the router reads it. Node and the router take a target in absolute form
 * as well as in origin form (`GET http://host/parley/poll?v=1`, RFC 9112 3.2.2), and the routes
 * serve both alike: whatever else reads a target (what is sent on to another node, what a
 * closing server answers) reads it the same way.
 */

import type { FastifyInstance } from 'fastify'

/** The scheme and authority of an `http:` or `https:` target in absolute form. */
const ABSOLUTE_FORM = /^https?:\/\/[^/?#]+/i

/**
 * `url` (a request's target) in origin form, its path and query: a target in absolute form as the
 * router reads it, what follows the authority from its first `/` or `?` (`/` when nothing does).
 * One the router refuses as a bad URL (a `#` in it, no authority, no URL at all) is left as it
 * came: a target not in origin form names no route.
 */
export function originForm(url: string): string {
  if (url.startsWith('/')) return url
  const authority = ABSOLUTE_FORM.exec(url)
  if (!authority || url.includes('#') || !URL.canParse(url)) return url
  const rest = url.slice(authority[0].length)
  return rest.startsWith('/') ? rest : `/${rest}`
}

/**
 * Where the router begins the query of `url`, a target in origin form: at its first `?` or `#`
 * (Node takes a `#` in a target, and the routes serve `/parley/poll#v=1&sid=...` as a GET of the
 * session), or `;` with `semicolon` (see `semicolonQueries`); -1 when it has none.
 */
export function queryStart(url: string, semicolon: boolean): number {
  let start = -1
  for (const delimiter of semicolon ? ['?', '#', ';'] : ['?', '#']) {
    const at = url.indexOf(delimiter)
    if (at >= 0 && (start < 0 || at < start)) start = at
  }
  return start
}

/**
 * Whether the application's router begins a query at a `;` too: Fastify's `useSemicolonDelimiter`
 * (off by default), given at the top of its options (deprecated) or in `routerOptions`, whose
 * types leave it out, as far as its options tell it: as with `pathRules`, `initialConfig` fills
 * in routerOptions' own (false), which the router takes over one at the top when it was given
 * (see `settleRouterReading`).
 */
export function semicolonQueries(app: FastifyInstance): boolean {
  const config = app.initialConfig
  if (config.useSemicolonDelimiter === true) return true
  const router: object | undefined = config.routerOptions
  return router !== undefined && 'useSemicolonDelimiter' in router && router.useSemicolonDelimiter === true
}

/**
 * Whether the application's router matches paths whatever their letter case: Fastify's
 * `caseSensitive: false`, given at the top of its options (deprecated; Fastify 5.0 has no
 * `routerOptions`) or in `routerOptions`, which then holds it.
 */
export function caseInsensitiveRoutes(app: FastifyInstance): boolean {
  const config = app.initialConfig
  const router: object | undefined = config.routerOptions
  if (router !== undefined && 'caseSensitive' in router) return router.caseSensitive === false
  return config.caseSensitive === false
}

/**
 * How the application's router reads a request's path before it looks for a route, besides its
 * percent-encodings (see `routedPath`): Fastify's `caseSensitive: false` (`anyCase`),
 * `ignoreDuplicateSlashes` and `ignoreTrailingSlash`.
 */
export interface PathRules {
  anyCase: boolean
  duplicateSlashes: boolean
  trailingSlash: boolean
}

/** What the router reads no path by: a path is matched as written, its escapes decoded. */
export const LITERAL_PATHS: PathRules = { anyCase: false, duplicateSlashes: false, trailingSlash: false }

/**
 * `path` (a target's path, its query cut off) as Fastify's router (find-my-way) reads it before
 * it looks for a route under `rules`, so that what matches it here matches what the routes serve
 * while the server is open: its percent-encodings decoded but those of the characters that
 * delimit a URL's parts (`%2F` stays, `%70` is `p`, `%25` stays as written), then its runs of
 * slashes folded into one, then one trailing slash dropped, then its letters lower-cased, each
 * when the router does. Undefined for a path the router refuses (an escape that decodes to no
 * UTF-8: Fastify's 400, no route).
 */
export function routedPath(path: string, rules: PathRules): string | undefined {
  let read = path
  if (read.includes('%')) {
    try {
      // decodeURI leaves the delimiters' escapes alone, as the router does; not `%25`, which the
      // router keeps as written.
      read = decodeURI(read.replaceAll('%25', '%2525'))
    } catch {
      return undefined
    }
  }
  return folded(read, rules)
}

/**
 * A route's path as the router keeps it (find-my-way's `on`), which a request's `routedPath` is
 * matched against: its runs of slashes folded into one, one trailing slash dropped, its letters
 * lower-cased, each when the router does; never decoded. find-my-way holds a route's `%` as `%25`
 * (matched by a request's `%25`, which it keeps as written) and Fastify's escaped colon `::` as one
 * `:`. So a route written with an escape (a Fastify prefix `/b%61`) is reached only by `/b%2561`:
 * `/b%61/parley/ws` is read `/ba/parley/ws`, the route of a prefix `/ba`, not its own (Parley
 * refuses such a prefix: see prefix-escapes.ts). A lone `%` (a prefix `/100%`) is reached by `%25`.
 */
export function routePath(path: string, rules: PathRules): string {
  return folded(path, rules).replaceAll('::', ':').replaceAll('%', '%25')
}

/** `path` with the folds of `rules` (see `routedPath`), in the router's order. */
function folded(path: string, rules: PathRules): string {
  let read = path
  if (rules.duplicateSlashes) read = read.replace(/\/\/+/g, '/')
  if (rules.trailingSlash && read.length > 1 && read.endsWith('/')) read = read.slice(0, -1)
  return rules.anyCase ? read.toLowerCase() : read
}

/**
 * The application's `PathRules`, as far as its options tell them before any route of Parley's is
 * in the router. Each of `ignoreDuplicateSlashes` and `ignoreTrailingSlash` may be given at the top
 * of Fastify's options (deprecated; Fastify 5.0 to 5.4 have no `routerOptions`) or in
 * `routerOptions`, which the router takes first (Fastify's `buildRouterOptions`: the top one only
 * where `routerOptions` leaves it out). But `initialConfig`'s copy of `routerOptions` has each
 * filled in (false) when not given there: one set true at the top and false there is the
 * router's or not, which only the router can tell (`settlePathRules`, once the routes are in).
 */
export function pathRules(app: FastifyInstance): PathRules {
  const config = app.initialConfig
  const router = config.routerOptions
  return {
    anyCase: caseInsensitiveRoutes(app),
    duplicateSlashes: config.ignoreDuplicateSlashes === true || router?.ignoreDuplicateSlashes === true,
    trailingSlash: config.ignoreTrailingSlash === true || router?.ignoreTrailingSlash === true,
  }
}

/**
 * How a Fastify instance's router reads a request's target before it looks for a route: where
 * the path ends (`semicolon`, see `semicolonQueries`), and how it is read then (`rules`, see
 * `pathRules`). Made from the application's options (`routerReading`), then settled by the router
 * itself once a route of Parley's is in it (`settleRouterReading`), for all that reads it.
 */
export interface RouterReading {
  semicolon: boolean
  readonly rules: PathRules
}

/** Fastify's defaults: the path ends at `?` or `#`, and is matched as written, its escapes decoded. */
export const DEFAULT_READING: Readonly<RouterReading> = { semicolon: false, rules: LITERAL_PATHS }

/** The application's `RouterReading`, as far as its options tell it (see `settleRouterReading`). */
export function routerReading(app: FastifyInstance): RouterReading {
  return { semicolon: semicolonQueries(app), rules: pathRules(app) }
}

/**
 * Settles `reading` (made by `routerReading`) by the router itself, once `route` is in it: the URL
 * of a static GET route of Parley's, its context's prefix included, as written. The router answers
 * whether it serves that route with a trailing slash, with its last slash doubled, or with a `;`
 * after it, whichever of the application's options it took (see `pathRules`, `semicolonQueries`);
 * letter case needs no asking (`caseSensitive` is never filled in). A route of the application's
 * with parameters that such a URL would fall into (`/*`) is not Parley's, and says nothing.
 */
export function settleRouterReading(app: FastifyInstance, route: string, reading: RouterReading): void {
  // Asked at the URL a request reaches the route by, as the router holds it: a prefix's `::` is
  // one `:` there, and its `%` is `%25`. As written, `/a::b/...` names no route, and a lone `%`
  // is a URL the router refuses, whose 400 it finds for every such question.
  const url = routePath(route, LITERAL_PATHS)
  const last = url.lastIndexOf('/')
  reading.rules.duplicateSlashes = servesParley(app, `${url.slice(0, last)}/${url.slice(last)}`)
  reading.rules.trailingSlash = servesParley(app, `${url}/`)
  reading.semicolon = servesParley(app, `${url};v=1`)
}

/**
 * Whether the router finds Parley's route at `url`, the route's URL as written: a GET route whose
 * parameters, if any, each read as its own name there. Those of a prefix (`/:tenant`) do, where
 * a route of the application's that such a URL falls into (`/*`) reads its parameter otherwise.
 */
function servesParley(app: FastifyInstance, url: string): boolean {
  // Typed as always found; null at run time when no route is.
  const found: { params: Record<string, unknown> } | null = app.findRoute({ method: 'GET', url })
  return found !== null && Object.entries(found.params).every(([name, value]) => value === `:${name}`)
}
