// The route parameters a session opened under (a Fastify prefix such as `/:tenant`), and the
// test every later request and resume of it passes: a session found by its sid alone must not
// change tenant.

/**
 * Fastify's `request.params`, strings only: a route of Parley's has parameters only from its
 * context's prefix (`/:tenant`), each one segment; a wildcard's (`*`) is a string too.
 */
export function routeParams(given: unknown): Record<string, string> {
  const params: Record<string, string> = {}
  if (typeof given !== 'object' || given === null) return params
  for (const [key, value] of Object.entries(given)) if (typeof value === 'string') params[key] = value
  return params
}

/** Parameters as a session keeps them: its own copy, which the application cannot change. */
export type RouteParams = Readonly<Record<string, string>>

/**
 * What a session under a route without parameters keeps: one object for all of them; and what
 * stands for a request's parameters under such a route (see `mayHaveParams`).
 */
export const NO_PARAMS: RouteParams = Object.freeze({})

/**
 * Whether a route written `written` (as Fastify takes it: the endpoints' path under the context's
 * prefix) may have parameters: a `:` (an escaped `::` too, which only costs the copy) or a wildcard
 * `*`. Fastify gives every request of a route without them `{}` for its params: the tenant check
 * of each request compares with `NO_PARAMS` then, rather than copy them (`routeParams`) every time.
 */
export function mayHaveParams(written: string): boolean {
  return written.includes(':') || written.includes('*')
}

/** `params` as a session keeps them (see `RouteParams`). */
export function keptParams(params: Record<string, string>): RouteParams {
  const names = Object.keys(params)
  return names.length === 0 ? NO_PARAMS : Object.freeze({ ...params })
}

/** Whether `given` (a request's) names the same values, under the same names, as `kept`. */
export function sameParams(kept: RouteParams, given: Record<string, string>): boolean {
  const names = Object.keys(kept)
  if (names.length !== Object.keys(given).length) return false
  return names.every((name) => Object.hasOwn(given, name) && given[name] === kept[name])
}

/**
 * What an SSE or polling request reads that names no session here; and one that names a session
 * under other route parameters than it opened with: another tenant learns nothing of it, not even
 * that its sid is one.
 */
export const NO_SUCH_SESSION = 'no such session'
