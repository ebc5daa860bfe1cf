import type http from 'node:http'
import type { OutgoingHttpHeaders } from 'node:http'
import { decodeText, PacketType, PROTOCOL_VERSION, type TransportName } from '@parley/protocol'
import type { RawData } from 'ws'
import { httpSegments } from '../transports/registry.js'
import type { NodeAgents } from './node-agents.js'
import { originForm, queryStart } from './request-target.js'

/**
 * A client's goodbye (its CLOSE) that reaches a relayed WebSocket (see forward-ws.ts) once the
 * owner's side of the relay no longer takes messages: one the client sent as it read the CLOSE
 * 'server handoff' of a draining owner, crossing it. A client on the owner's own WebSocket has
 * such a goodbye read during the closing handshake (see frozen-goodbye.ts); here the relay
 * answered the owner's close frame as it came, and may send nothing after it on that WebSocket.
 * Dropped, the goodbye would leave the owner's frozen session waiting for a claim that never
 * comes: its snapshot claimable for its ttl, the owner's drain held until its timeout. So it
 * goes to the owner as an upstream POST of the session, on its SSE or polling endpoint, where a
 * session frozen for its handoff hears its client's goodbye whatever transport it was on
 * (`UpstreamPosts.takeFrozen`). So too when this node's own close ended the relay (CLOSE 'server
 * handoff' to the client, 1001 to the owner), the goodbye crossing that CLOSE: it comes once this
 * node's forwarding has closed, and still goes, its close waiting for it (see `Forwarder.close`);
 * the session, live on the owner, waits there for its client's resume, and ends on the goodbye
 * whatever transport it is on (`endsWherever` in routing.ts). One that crossed a live move's MOVED
 * instead may find the owner's copy claimed already: the owner sends it on to the claimer
 * (GOODBYE_ON, see routing.ts), which ends the session there. Anything else the client sends
 * then is for nobody: the session goes on elsewhere, and its client sends it again there.
 */

/** The text of `data` when it is one CLOSE packet (what a client's goodbye is); undefined otherwise. */
export function goodbyeIn(data: RawData, isBinary: boolean, maxPayload: number): string | undefined {
  if (isBinary) return undefined
  // ws hands over a Buffer (its default binaryType); a list or an ArrayBuffer with another.
  const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)
  const text = bytes.toString('utf8')
  const decoded = decodeText(text, { maxPayload })
  return decoded.ok && decoded.packet.type === PacketType.CLOSE ? text : undefined
}

export interface GoodbyePost {
  /** The connections to the other nodes (see node-agents.ts). */
  agents: NodeAgents
  /** The owner's endpoint for the session: `http://host:port/parley/poll?v=1&sid=...`. */
  url: URL
  /** The upgrade's headers as forwarded (Origin included: the owner checks it as for the client). */
  headers: OutgoingHttpHeaders
  text: string
  /** True: a connection of its own, closed after the answer (see `HttpForwards.goodbye`). */
  ownConnection: boolean
  /** The longest the owner may take to answer; then the POST is given up. */
  timeoutMs: number
  /** The POST could not be made or was not answered: the goodbye is lost, as before. */
  failed: (err: Error) => void
}

/** Sends the goodbye to the owner (see above); the request, for the caller to cut at its close. */
export function postGoodbye({
  agents,
  url,
  headers,
  text,
  ownConnection,
  timeoutMs,
  failed,
}: GoodbyePost): http.ClientRequest {
  const post = agents.request(url, {
    method: 'POST',
    path: `${url.pathname}${url.search}`,
    headers: {
      ...headers,
      'content-type': 'text/plain; charset=utf-8',
      'content-length': String(Buffer.byteLength(text)),
    },
    ...(ownConnection && { agent: false as const }),
  })
  post.setTimeout(timeoutMs, () => post.destroy(new Error(`no answer within ${timeoutMs} ms`)))
  post.once('response', (answer) => {
    // A frozen session answers 204; anything else says the owner no longer held it so.
    if ((answer.statusCode ?? 0) >= 300) failed(new Error(`the owner answered HTTP ${answer.statusCode}`))
    answer.resume()
  })
  post.on('error', failed)
  post.end(text)
  return post
}

/**
 * The endpoint a late goodbye goes to on the owner, by its path segment: polling's or, when
 * `transports` offers SSE alone, SSE's. Either hears a frozen session's goodbye, marked as one
 * (GOODBYE), whatever the owner's own `transports` (see `heardWhileDisabled`): the owner need not
 * offer the one this node picks, and with WebSocket alone the goodbye goes to polling's. An owner
 * of an earlier version hears it only on an endpoint it offers.
 */
export function goodbyeEndpoint(transports: readonly TransportName[]): string {
  return httpSegments[transports.includes('sse') && !transports.includes('polling') ? 'sse' : 'polling']
}

/**
 * The path and query, but the sid, of the late goodbye of the relayed upgrade at `upgrade` (its
 * target, as its client sent it): the WebSocket endpoint's segment, its last, made `endpoint`'s
 * (see `goodbyeEndpoint`). What comes before it stays as the client wrote it, the prefix of the
 * Fastify context Parley is registered in among it, and a value of a parameter there (`/acme`
 * under `/:tenant`): the nodes of a cluster share their routes, and every request sent on keeps
 * its own path.
 */
export function goodbyePath(upgrade: string, endpoint: string): string {
  const target = originForm(upgrade)
  const query = queryStart(target, false)
  // The router took the endpoint with trailing slashes too (`ignoreTrailingSlash`).
  const path = (query < 0 ? target : target.slice(0, query)).replace(/\/+$/, '')
  return `${path.slice(0, path.lastIndexOf('/') + 1)}${endpoint}?v=${PROTOCOL_VERSION}`
}
