import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import { ErrorCode, type HelloPacket, PacketType } from '@parley/protocol'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import type { HandshakeRequest } from '../handshake.js'
import type { ResolvedOptions } from '../options.js'
import { routeParams } from '../route-params.js'
import type { ParleyServer } from '../server.js'
import { SHUTTING_DOWN } from '../shutting-down.js'
import { Timed, TimerQueue } from '../timer-queue.js'
import type { ClosingWebSockets } from '../transports/closing-websockets.js'
import { outgoing } from '../transports/transport.js'
import { type WebSocketSettings, WebSocketTransport } from '../transports/websocket.js'
import type { ClientTracking } from './client-tracking.js'
import type { AddressOf } from './fastify-closing.js'
import { type Forwarder, isHandedOff } from './forward.js'
import { type ForwardedRequest, rawForwardedRequest } from './forwarded-request.js'
import { ROUTED_HEADER } from './routing.js'

export interface WebSocketHandshakeDeps {
  server: ParleyServer
  /** The endpoints' logger: where errors of open WebSockets are logged (at debug). */
  log: FastifyBaseLogger
  options: ResolvedOptions
  forwarder: Forwarder
  /** True when Parley registered @fastify/websocket itself (its error handler is Parley's). */
  ownsWebSocketPlugin: boolean
  /** Takes Parley's WebSockets out of ws's tracking (see `ClientTracking`). */
  tracking: ClientTracking
  /**
   * The WebSockets waiting for their client's close frame, or for their HELLO's lookup when the
   * server closed (cut when the server closes).
   */
  closing: ClosingWebSockets
  /** The address of a request's client that no route took, as Fastify's `request.ip` gives it. */
  addressOf: AddressOf
  /** True when ws does not check that text frames are UTF-8 (see `WebSocketSettings.checkUtf8`). */
  checkUtf8: boolean
}

/** A WebSocket's wait for its HELLO, in the handshakes' queue: `expire` refuses it. */
class HelloWait extends Timed {
  readonly expire: () => void

  constructor(expire: () => void) {
    super()
    this.expire = expire
  }
}

/** The first moments of every WebSocket on the `/ws` endpoint, up to its HELLO's answer. */
export class WebSocketHandshakes {
  readonly #deps: WebSocketHandshakeDeps
  /** The stand-in HTTP response of each upgrade request, released once the WebSocket is open. */
  readonly #upgrades = new WeakMap<IncomingMessage, ServerResponse>()
  /**
   * What every WebSocket transport shares; with Parley's own @fastify/websocket, one error
   * logger for all (not a closure each, holding its request's logger).
   */
  readonly #settings: WebSocketSettings
  /**
   * The WebSockets waiting for their HELLO, each within `handshakeTimeout`: one delay for all, so
   * one queue under one timer (see `TimerQueue`), whose verdicts wait two turns of the event
   * loop. A HELLO that came while the server's thread stalled past a WebSocket's deadline is read
   * first and answered, where a plain timer, run first, refused it.
   */
  readonly #helloWaits: TimerQueue<HelloWait>

  constructor(deps: WebSocketHandshakeDeps) {
    this.#deps = deps
    this.#helloWaits = new TimerQueue(deps.options.handshakeTimeout, (wait) => wait.expire())
    this.#settings = {
      maxPayload: deps.options.maxPayload,
      closing: deps.closing,
      checkUtf8: deps.checkUtf8,
      logError: deps.ownsWebSocketPlugin
        ? (err) => deps.log.debug({ err }, 'parley: websocket error')
        : undefined,
    }
  }

  /** An upgrade request passed the route's checks; `response` is its stand-in answer. */
  upgrading(request: IncomingMessage, response: ServerResponse): void {
    this.#upgrades.set(request, response)
  }

  /**
   * A WebSocket is open: waits for its HELLO (within `handshakeTimeout`), then hands a resume
   * of a session held on another node to that node, or handshakes here. Refusals are an ERROR
   * packet, then a close with 1008.
   */
  accept(ws: WebSocket, request: FastifyRequest): void {
    releaseUpgrade(request.raw.socket, this.#upgrades.get(request.raw))
    const handshake = handshakeRequest(request, true)
    this.#accept(ws, request.raw, request, handshake, handshake.params)
  }

  /**
   * `accept` for a WebSocket of an upgrade that reached the server while Fastify refuses
   * requests at close (see last-words.ts), which no route took: `req` is Node's. The server is
   * draining then, so its HELLO is handed as the route hands it while the node drains: a resume
   * of a session another node holds, or that this node handed off, is relayed to that node (to a
   * live node, which claims it), a new session refused with ERROR PARLEY_SERVER_SHUTTING_DOWN.
   * `params`: its route parameters, as the closing answers read its URL (see `#accept`).
   */
  acceptAtClose(ws: WebSocket, req: IncomingMessage, params: Record<string, string> | undefined): void {
    const address = this.#deps.addressOf(req)
    this.#accept(ws, req, rawForwardedRequest(req, address), rawHandshakeRequest(req, address), params)
  }

  /**
   * See `accept`. `request`: what a relay to another node sends on of the upgrade request;
   * `handshake`: what the handshake keeps of it; `params`: its route parameters as the route
   * read them, which a resume's session on another node is looked up under (see
   * `Forwarder.resumeOwner`).
   */
  #accept(
    ws: WebSocket,
    raw: IncomingMessage,
    request: ForwardedRequest,
    handshake: HandshakeRequest,
    params: Readonly<Record<string, string>> | undefined,
  ): void {
    const { server, options, forwarder, tracking, closing } = this.#deps
    tracking.release(ws)
    const socket = raw.socket
    // With Parley's own @fastify/websocket, the transport's error listener takes the place of
    // the one @fastify/websocket added, which holds the request (see WebSocketSettings).
    const relayed = request.headers[ROUTED_HEADER] !== undefined
    const transport = new WebSocketTransport(ws, this.#settings, socket, relayed)
    let settled = false
    // `ackId` 1: the application's middleware was slow, not this WebSocket (see `Refusal.middleware`).
    const refuse = (code: string, message: string, kind: 'refused' | 'shutdown' = 'refused', ackId = 0) => {
      transport.send(outgoing({ type: PacketType.ERROR, seq: 0, ackId, code, message }))
      transport.close(kind)
    }
    const helloWait = new HelloWait(() => {
      settled = true
      server.trackPending(transport, null)
      refuse(ErrorCode.HANDSHAKE_TIMEOUT, `no HELLO within ${options.handshakeTimeout} ms`)
    })
    this.#helloWaits.add(helloWait)
    /**
     * What the HELLO waits for in the forwarder: the lookup of the HELLO's session, or the question
     * to the session's node for it (see `lookUp`), or 'relay' while it connects to the session's
     * node (see `relay`). Should the server close meanwhile, the WebSocket is told CLOSE 'server
     * handoff' (see `closedMeanwhile`): after the lookup, which the close waits for (see
     * `ClosingWebSockets.lookingUp`); at once for a connection, which would be closed so anyway
     * once open (see `Forwarder.close`). Either way this handshake alone ends the WebSocket, and
     * `closing` alone cuts it, should its client not answer.
     */
    let forwarding: Promise<unknown> | 'relay' | undefined
    // At close the server ends it; the timer goes too, or it would hold the process up to
    // handshakeTimeout after the close. One whose HELLO has not come yet, or is still answered
    // here (the application's handshake middleware has not settled, say), is told what a new
    // session is told while the node drains, then closed with 1001: the client reads a server
    // that is closing, and tries WebSocket again (through the balancer, another node), where a
    // bare close would have it take WebSocket for broken and step down to its next transport.
    // The answer the handshake makes later finds the transport closed.
    server.trackPending(transport, () => {
      helloWait.leaveQueue()
      if (forwarding === 'relay') closedMeanwhile()
      else if (forwarding !== undefined) closing.lookingUp(ws, forwarding, options.handshakeTimeout)
      else {
        settled = true
        refuse(ErrorCode.SERVER_SHUTTING_DOWN, SHUTTING_DOWN, 'shutdown')
      }
    })
    const settle = () => {
      settled = true
      helloWait.leaveQueue()
      // Until the session binds it, nothing more is read: packets a client pipelines after its
      // HELLO are numbered, and it resends them after OPEN.
      transport.bind(null)
    }
    transport.bind({
      transportPacket: (_, packet) => {
        if (settled) return
        settle()
        if (packet.type !== PacketType.HELLO) {
          server.trackPending(transport, null)
          refuse(ErrorCode.INVALID_PACKET, 'the first packet must be HELLO')
          return
        }
        handOverOrHandshake(packet).then(
          (refusal) => {
            server.trackPending(transport, null)
            if (refusal)
              refuse(
                refusal.code,
                refusal.message,
                'refused',
                'middleware' in refusal && refusal.middleware ? 1 : 0,
              )
          },
          (err: unknown) => {
            server.trackPending(transport, null)
            const failed = server.handshakeFailed(err, 'websocket')
            refuse(failed.code, failed.message)
          },
        )
      },
      transportInvalid: (_, error) => {
        if (settled) return
        settle()
        server.trackPending(transport, null)
        refuse(error.code, error.message)
      },
      transportLost: () => {
        helloWait.leaveQueue()
        server.trackPending(transport, null)
      },
    })

    /**
     * What `lookup`, a step of finding where this HELLO goes, found, or CLOSED when the server
     * closed while it was under way: the HELLO can then be neither sent on nor taken here.
     */
    async function lookUp<T>(lookup: Promise<T>): Promise<T | typeof CLOSED> {
      forwarding = lookup
      try {
        const found = await lookup
        return server.closed ? CLOSED : found
      } finally {
        forwarding = undefined
      }
    }

    /** `handOver`, the forwarder's relay of this WebSocket to the session's node (see `forwarding`). */
    async function relay<T>(handOver: () => Promise<T>): Promise<T> {
      forwarding = 'relay'
      try {
        return await handOver()
      } finally {
        forwarding = undefined
      }
    }

    /**
     * The server closed while the HELLO was looked up or sent on: the client is told what a relay
     * ending at close tells its own (see `Forwarder.close`), and resumes through another node with
     * its quiet time, where a bare close would fail its transport. Not once the relay took the
     * WebSocket: the relay's own close tells it.
     */
    function closedMeanwhile(): null {
      if (!transport.open) return null
      if (ws.readyState === ws.OPEN) ws.send(forwarder.relayClose())
      transport.close('shutdown')
      return null
    }

    /**
     * A resume of a session that another node holds: that node hands the session over, and it
     * is claimed here, where the client's WebSocket ends; or, when it will not (or cannot be
     * asked), the WebSocket is relayed there. A resume of a session this draining node handed
     * off is relayed to a live node, which claims it. Anything else is ours.
     */
    async function handOverOrHandshake(hello: HelloPacket) {
      if (hello.sid !== undefined && server.handedOff(hello.sid, params)) {
        // This node drains and handed the session off: relayed to a live node, which claims
        // it now (the relay ends when this node closes, and the client resumes once more).
        const sid = hello.sid
        const other = await lookUp(forwarder.anotherNode(sid, request, 'websocket'))
        if (other === CLOSED) return closedMeanwhile()
        if (other && transport.open) {
          const take = () => transport.release()
          // The node closes only once the answer went back (see Drain.sendingOn).
          const relayed = (answered: Promise<void>) => server.sendingOn(answered)
          const outcome = await relay(() =>
            forwarder.handOverWebSocket(other, ws, hello, request, take, relayed),
          )
          if (typeof outcome === 'object') return outcome
          if (outcome !== 'unreachable') return null
        }
      } else if (hello.sid !== undefined && !server.sessionFor(hello.sid)) {
        const sid = hello.sid
        const owner = await lookUp(forwarder.resumeOwner(sid, request, 'websocket', undefined, params))
        if (owner === CLOSED) return closedMeanwhile()
        // Its node is handing it off, or (below) stored it at this node's request: it is claimed
        // here, and a claim that finds nothing tells the client to try again (see `handshake`).
        if (isHandedOff(owner)) return server.handshake(transport, hello, handshake, owner.handedOffBy)
        if (owner && transport.open) {
          // Waited for at close as the lookup is: a bare close would fail the client's transport.
          const node = owner.node
          const stored = await lookUp(server.requestHandOff(node, sid, handshake.params ?? {}))
          if (stored === CLOSED) return closedMeanwhile()
          if (stored) return server.handshake(transport, hello, handshake, node)
        }
        if (owner && transport.open) {
          const take = () => transport.release()
          const outcome = await relay(() => forwarder.handOverWebSocket(owner, ws, hello, request, take))
          // Refused by the owner: its answer, never a new session while the client's lives there.
          if (typeof outcome === 'object') return outcome
          if (outcome !== 'unreachable') return null
          // Unreachable: a resume of a session this node does not know (a new one, as always),
          // unless the session left that node meanwhile (see `handshake`).
          const moved = await lookUp(forwarder.movedSince(owner, sid, request, 'websocket'))
          if (moved === CLOSED) return closedMeanwhile()
          return server.handshake(transport, hello, handshake, moved ? owner.node : undefined)
        }
      }
      return server.handshake(transport, hello, handshake)
    }
  }
}

/** What `lookUp` finds when the server closed during the lookup. */
const CLOSED = Symbol('closed')

/**
 * What the handshake keeps of the request that carried a HELLO. Of a WebSocket upgrade it keeps
 * the headers less those of the upgrade itself (`Connection`, `Upgrade`, `Sec-WebSocket-*`):
 * they describe the transport, not the client, and would be held for the connection's life.
 */
export function handshakeRequest(request: FastifyRequest, websocket = false): HandshakeRequest {
  const query: Record<string, string> = {}
  for (const [key, value] of Object.entries(request.query as Record<string, unknown>)) {
    if (typeof value === 'string') query[key] = value
  }
  return {
    headers: websocket ? withoutUpgrade(request.headers) : request.headers,
    query,
    // An upgrade `app.injectWS` makes has no connection: Fastify's `request.ip` is then undefined,
    // and behind a trusted proxy it throws. No address, as for a request no route took.
    address: request.raw.socket ? request.ip : '',
    url: request.url,
    params: routeParams(request.params),
  }
}

/**
 * `handshakeRequest` of a WebSocket upgrade no route took (see `acceptAtClose`): its query as
 * Fastify parses it (a name given twice is no string, and is left out), its client's `address`
 * as Fastify's `request.ip` would give it (see `clientAddress`).
 */
function rawHandshakeRequest(req: IncomingMessage, address: string | undefined): HandshakeRequest {
  const url = req.url ?? ''
  const queryAt = url.indexOf('?')
  const params = new URLSearchParams(queryAt < 0 ? '' : url.slice(queryAt + 1))
  const query: Record<string, string> = {}
  for (const key of new Set(params.keys())) {
    const values = params.getAll(key)
    if (values.length === 1) query[key] = values[0]!
  }
  // No route read it: its parameters are unknown (the server is closing, and opens no session).
  return { headers: withoutUpgrade(req.headers), query, address: address ?? '', url, params: {} }
}

function withoutUpgrade(received: IncomingHttpHeaders): IncomingHttpHeaders {
  const headers: IncomingHttpHeaders = {}
  for (const name in received) {
    if (name === 'connection' || name === 'upgrade' || name.startsWith('sec-websocket-')) continue
    headers[name] = received[name]
  }
  return headers
}

/**
 * Lets the upgrade's stand-in response go once the WebSocket is open; it would otherwise live
 * as long as the WebSocket does (about 2 KB per connection, with its request), assigned to the
 * TCP socket. (@fastify/websocket's error listener holds both too: see WebSocketSettings.)
 */
function releaseUpgrade(socket: IncomingMessage['socket'], response: ServerResponse | undefined): void {
  if (response?.socket === socket) response.detachSocket(socket)
}
