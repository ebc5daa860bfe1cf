// The headers a proxy keeps for itself (RFC 9110 §7.6.1): they describe one connection, not the
// message, so each hop sets its own. A proxy that passes a backend's `Connection: close` on tells
// its client that the client's connection ends, which it does not decide; the client may then
// meet a connection cut under a request it sent on it. nginx drops them, and so do the tests'
// proxies.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'

/**
 * Hop-by-hop whatever `Connection` says: RFC 9110's own (Connection, Proxy-Connection,
 * Keep-Alive, TE, Transfer-Encoding, Upgrade), and those older proxies keep for themselves
 * (RFC 2616 §13.5.1: Proxy-Authenticate, Proxy-Authorization, Trailer).
 */
const HOP_BY_HOP = new Set([
  'connection',
  'proxy-connection',
  'keep-alive',
  'te',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
  'trailer',
])

/** The names `Connection` lists (in lower case): hop-by-hop too, for this message. */
function listedIn(connection: string | string[] | undefined): Set<string> {
  const values = Array.isArray(connection) ? connection : connection === undefined ? [] : [connection]
  const names = new Set<string>()
  for (const value of values)
    for (const name of value.split(',')) if (name.trim()) names.add(name.trim().toLowerCase())
  return names
}

/** Whether `name` (any case) is hop-by-hop in a message whose `Connection` is `connection`. */
export function isHopByHop(name: string, connection: string | string[] | undefined): boolean {
  const lower = name.toLowerCase()
  return HOP_BY_HOP.has(lower) || listedIn(connection).has(lower)
}

/** `headers` (Node's, names in lower case) without their hop-by-hop ones: what goes to the next hop. */
export function endToEnd(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const listed = listedIn(headers.connection)
  const kept: OutgoingHttpHeaders = {}
  for (const [name, value] of Object.entries(headers))
    if (value !== undefined && !HOP_BY_HOP.has(name) && !listed.has(name)) kept[name] = value
  return kept
}

/**
 * `rawHeaders` (names as they came, each followed by its value) without their hop-by-hop ones,
 * as header lines for a message written by hand (an upgrade's, which Node hands over raw).
 */
export function endToEndLines(
  rawHeaders: readonly string[],
  connection: string | string[] | undefined,
): string[] {
  const lines: string[] = []
  for (let k = 0; k + 1 < rawHeaders.length; k += 2) {
    const name = rawHeaders[k]!
    if (!isHopByHop(name, connection)) lines.push(`${name}: ${rawHeaders[k + 1]}`)
  }
  return lines
}
