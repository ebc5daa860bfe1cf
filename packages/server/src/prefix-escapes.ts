import { ParleyOptionError } from './options.js'

/** A percent escape: `%` and two hex digits. A lone `%` is none (see `checkPrefixEscapes`). */
const ESCAPE = /%[0-9A-Fa-f]{2}/

/**
 * Fastify's router (find-my-way) keeps a route's path as written, its `%` as `%25`, and decodes
 * every request's path before it matches one. Under a prefix written with a percent escape
 * (`/b%61`) no client reaches the endpoints at the URL it is given: `/b%61/parley/poll` is read
 * `/ba/parley/poll`, and only `/b%2561/parley/poll` matches. Every request would get a 404, said
 * nowhere: refused at registration, before anything is touched. A lone `%` (`/100%`) is no
 * escape: a client's URL writes it `%25`, as any `%` of a path, and reaches the endpoints.
 */
export function checkPrefixEscapes(prefix: string, path: string): void {
  const found = ESCAPE.exec(prefix)?.[0]
  if (found === undefined) return
  const decoded = decodedPrefix(prefix)
  const instead = decoded === undefined ? '' : ` ("${decoded}")`
  throw new ParleyOptionError(
    'path',
    `is "${path}" under the prefix "${prefix}", whose percent escape ("${found}") the router keeps as written in its routes but decodes in every request's path: no client would reach Parley's endpoints there; write the prefix with the characters themselves${instead}`,
  )
}

/**
 * `prefix` with its escapes decoded as the router decodes a request's path, when that leaves no
 * escape (one of a character a path keeps encoded, `%2F`, stays); undefined otherwise.
 */
function decodedPrefix(prefix: string): string | undefined {
  try {
    const decoded = decodeURI(prefix)
    return decoded.includes('%') ? undefined : decoded
  } catch {
    // An escape that decodes to no UTF-8 (`%C3` alone): nothing to suggest.
    return undefined
  }
}
