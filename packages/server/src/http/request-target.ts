/*
 * A request's target as the router reads it. Node and the router take a target in absolute form
 * as well as in origin form (`GET http://host/parley/poll?v=1`, RFC 9112 3.2.2), and the routes
 * serve both alike: whatever else reads a target (what is sent on to another node, what a
 * closing server answers) reads it the same way.
 */

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
