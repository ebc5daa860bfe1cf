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
  const kept = routePath(written, rules)
  const segments = written.split('/')
  if (!segments.some((segment) => PARAMETER.test(segment))) return literal(kept)
  const parts: string[] = []
  for (const segment of segments) {
    if (PARAMETER.test(segment)) {
      parts.push('[^/]+')
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
  return { is: (path) => exact.test(path), covers: (path) => under.test(path), length: kept.length }
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
  }
}

function escaped(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
}
