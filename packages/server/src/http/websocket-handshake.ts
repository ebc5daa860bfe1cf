import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import { ErrorCode, type HelloPacket, PacketType } from '@parley/protocol'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import type { ResolvedOptions } from '../options.js'
import type { HandshakeRequest, ParleyServer } from '../server.js'
import { outgoing } from '../transports/transport.js'
import { WebSocketTransport } from '../transports/websocket.js'
import type { Forwarder } from './forward.js'

export interface WebSocketHandshakeDeps {
  server: ParleyServer
  /** The endpoints' logger: where errors of open WebSockets are logged (at debug). */
  log: FastifyBaseLogger
  options: ResolvedOptions
  forwarder: Forwarder
  /** True when Parley registered @fastify/websocket itself (its error handler is Parley's). */
  ownsWebSocketPlugin: boolean
}

/** The first moments of every WebSocket on the `/ws` endpoint, up to its HELLO's answer. */
export class WebSocketHandshakes {
  readonly #deps: WebSocketHandshakeDeps
  /** The stand-in HTTP response of each upgrade request, released once the WebSocket is open. */
  readonly #upgrades = new WeakMap<IncomingMessage, ServerResponse>()
  /** One error listener for every WebSocket (not a closure each, holding its request's logger). */
  readonly #logError: (err: Error) => void

  constructor(deps: WebSocketHandshakeDeps) {
    this.#deps = deps
    this.#logError = (err) => deps.log.debug({ err }, 'parley: websocket error')
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
    const { server, options, forwarder, ownsWebSocketPlugin } = this.#deps
    const socket = request.raw.socket
    const handshake = handshakeRequest(request, true)
    const log = request.log
    releaseUpgrade(
      ws,
      socket,
      this.#upgrades.get(request.raw),
      ownsWebSocketPlugin ? this.#logError : undefined,
    )
    const transport = new WebSocketTransport(ws, options.maxPayload, socket)
    let settled = false
    const refuse = (code: string, message: string) => {
      transport.send(outgoing({ type: PacketType.ERROR, seq: 0, ackId: 0, code, message }))
      transport.close('refused')
    }
    const timer = setTimeout(() => {
      settled = true
      server.trackPending(transport, false)
      refuse(ErrorCode.HANDSHAKE_TIMEOUT, `no HELLO within ${options.handshakeTimeout} ms`)
    }, options.handshakeTimeout)
    server.trackPending(transport, true)
    const settle = () => {
      settled = true
      clearTimeout(timer)
      // Until the session binds it, nothing more is read: packets a client pipelines after its
      // HELLO are numbered, and it resends them after OPEN.
      transport.bind(null)
    }
    transport.bind({
      transportPacket: (_, packet) => {
        if (settled) return
        settle()
        if (packet.type !== PacketType.HELLO) {
          server.trackPending(transport, false)
          refuse(ErrorCode.INVALID_PACKET, 'the first packet must be HELLO')
          return
        }
        handOverOrHandshake(packet).then(
          (refusal) => {
            server.trackPending(transport, false)
            if (refusal) refuse(refusal.code, refusal.message)
          },
          (err: unknown) => {
            server.trackPending(transport, false)
            log.error({ err }, 'parley: handshake failed')
            refuse(ErrorCode.BAD_REQUEST, 'the handshake failed')
          },
        )
      },
      transportInvalid: (_, error) => {
        if (settled) return
        settle()
        server.trackPending(transport, false)
        refuse(error.code, error.message)
      },
      transportLost: () => {
        clearTimeout(timer)
        server.trackPending(transport, false)
      },
    })

    /**
     * A resume of a session that another node holds: that node hands the session over, and it
     * is claimed here, where the client's WebSocket ends; or, when it will not (or cannot be
     * asked), the WebSocket is relayed there. Anything else is ours.
     */
    async function handOverOrHandshake(hello: HelloPacket) {
      if (hello.sid !== undefined && !server.sessionFor(hello.sid)) {
        const owner = await forwarder.ownerOf(hello.sid, request, 'websocket', true)
        if (owner && transport.open && (await server.requestHandOff(owner.node, hello.sid))) {
          return server.handshake(transport, hello, handshake)
        }
        if (owner && transport.open) {
          const take = () => transport.release()
          const outcome = await forwarder.handOverWebSocket(owner, ws, hello, request, take)
          // Unreachable: a resume of a session this node does not know (a new one, as always).
          if (outcome !== 'unreachable') return null
        }
      }
      return server.handshake(transport, hello, handshake)
    }
  }
}

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
    address: request.ip,
  }
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
 * Lets the upgrade's request and its stand-in response go once the WebSocket is open; they
 * would otherwise live as long as it does (about 2 KB per connection): the response stays
 * assigned to the TCP socket, and @fastify/websocket's error listener holds both. With
 * `logError` (Parley registered @fastify/websocket, so that listener is Parley's), the listener
 * is replaced by that one, shared, which logs the same line without holding the request.
 */
function releaseUpgrade(
  ws: WebSocket,
  socket: IncomingMessage['socket'],
  response: ServerResponse | undefined,
  logError: ((err: Error) => void) | undefined,
): void {
  if (response?.socket === socket) response.detachSocket(socket)
  if (logError) {
    // Added before the old one goes: removing an event's last listener deletes a property of
    // the emitter's event table, which turns that table into a dictionary (about 130 bytes
    // more per connection); removing one of two keeps it as it is.
    ws.on('error', logError)
    for (const listener of ws.listeners('error')) {
      if (listener !== logError) ws.removeListener('error', listener as (err: Error) => void)
    }
  }
}
