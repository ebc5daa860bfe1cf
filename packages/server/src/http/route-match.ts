import { type PathRules, routePath } from './request-target.js'

/**
 * A route's path (written as Fastify takes it: a mount point's endpoints under its context's
 * prefix) as the router matches a request's path against it, for what reads the endpoints' URLs
 * outside the router: the answers at close, and which Fastify instance an upgrade goes to.
 */
export interface RouteMatch {
  /** Whether the router reads `path` (a `routedPath`) as this route. */
  is(path: string): boolean
  /** Whether `path` is this route, or lies under it (this route, then `/` and more). */
  covers(path: string): boolean
  /** How long the route is as the router keeps it: the longer, the more specific. */
  readonly length: number
  /**
   * The values of the route's parameters in `path`, a `routedPath` read with its letter case
   * kept, as Fastify's `request.params` gives them (the router slices them from that path, and
   * decodes what `routedPath` left encoded); `{}` for a route without any, or not `path`'s.
   */
  params(path: string): Record<string, string>
  /**
   * How many segments come before its first parameter (`Infinity` without one): of two routes
   * a path matches, the router takes the one whose static segments go further, trying a static
   * segment before a parameter at each step.
   */
  readonly staticSegments: number
}

/** A whole segment that is one parameter, as a prefix `/:tenant` has it; `::` is an escaped colon. */
const PARAMETER = /^:[A-Za-z0-9_]+$/

/**
 * `written` as the router matches it under `rules` (see `routePath`). A segment that is one
 * parameter (`:tenant`) matches any segment, as find-my-way's does; a path with any other
 * parameter (in a segment with other characters, with a regular expression) or a wildcard is
 * matched as written: only the router reads it, and it answers such URLs itself while it closes.
 */
export function routeMatch(written: string, rules: PathRules): RouteMatch {
  // Read for every upgrade on the server (see `instanceAt` in websocket-registrations.ts): made
  // once for each route and reading of it. The routes are the mount points', a handful; the
  // bound only keeps a process that mounts Parley anew under ever new prefixes from holding all.
  const key = `${Number(rules.anyCase)}${Number(rules.duplicateSlashes)}${Number(rules.trailingSlash)}${written}`
  let match = made.get(key)
  if (match === undefined) {
    if (made.size >= MADE_KEPT) made.clear()
    match = matchOf(written, rules)
    made.set(key, match)
  }
  return match
}

/** The matches made (see `routeMatch`), by their rules and route. */
const made = new Map<string, RouteMatch>()
const MADE_KEPT = 256

function matchOf(written: string, rules: PathRules): RouteMatch {
  const kept = routePath(written, rules)
  const segments = written.split('/')
  if (!segments.some((segment) => PARAMETER.test(segment))) return literal(kept)
  const parts: string[] = []
  const names: string[] = []
  for (const segment of segments) {
    if (PARAMETER.test(segment)) {
      parts.push('([^/]+)')
      names.push(segment.slice(1))
      continue
    }
    const unescaped = segment.replaceAll('::', '')
    if (unescaped.includes(':') || unescaped.includes('*')) return literal(kept)
    parts.push(escaped(routePath(segment, { ...rules, trailingSlash: false })))
  }
  let source = parts.join('/')
  // As `routePath` folds it: the router drops a route's trailing slash, and reads runs of them as one.
  if (rules.duplicateSlashes) source = source.replace(/\/\/+/g, '/')
  if (rules.trailingSlash && source.length > 1 && source.endsWith('/')) source = source.slice(0, -1)
  const exact = new RegExp(`^${source}$`)
  const under = new RegExp(`^${source}(?:/|$)`)
  // The route's letters are in lower case where the router ignores it: a path read with its own
  // case kept matches them whatever their case.
  const cased = new RegExp(`^${source}$`, rules.anyCase ? 'i' : '')
  return {
    is: (path) => exact.test(path),
    covers: (path) => under.test(path),
    length: kept.length,
    staticSegments: segments.findIndex((segment) => PARAMETER.test(segment)),
    params(path) {
      const values = cased.exec(path)
      const params: Record<string, string> = {}
      if (values) for (const [i, name] of names.entries()) params[name] = decoded(values[i + 1] ?? '')
      return params
    },
  }
}

/** A parameter's value as the router gives it: its escapes decoded, or as written if one is no UTF-8. */
function decoded(value: string): string {
  try {
    return decodeURIComponent(value)
  } catch {
    return value
  }
}

/**
 * `written` with each segment that is one parameter (`:tenant`) made `:`: two routes the router
 * reads as one path, whatever their parameters are named (`/:tenant/parley`, `/:org/parley`),
 * have the same shape.
 */
export function routeShape(written: string): string {
  return written
    .split('/')
    .map((segment) => (PARAMETER.test(segment) ? ':' : segment))
    .join('/')
}

function literal(kept: string): RouteMatch {
  return {
    is: (path) => path === kept,
    covers: (path) => path === kept || path.startsWith(`${kept}/`),
    length: kept.length,
    staticSegments: Number.POSITIVE_INFINITY,
    params: () => ({}),
  }
}

function escaped(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
}
