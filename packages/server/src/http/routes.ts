import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'
import {
  CloseReason,
  decodeBatch,
  ErrorCode,
  type HelloPacket,
  PacketType,
  PROTOCOL_VERSION,
  type TransportName,
  WS_SUBPROTOCOL,
} from '@parley/protocol'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import type { ResolvedOptions } from '../options.js'
import type { HandshakeRequest, ParleyServer } from '../server.js'
import type { Session } from '../session.js'
import type { HeaderBag, HttpTransport } from '../transports/http.js'
import { PollingTransport } from '../transports/polling.js'
import { SseTransport } from '../transports/sse.js'
import { outgoing } from '../transports/transport.js'
import { WebSocketTransport } from '../transports/websocket.js'
import { readBody } from './body.js'
import { Forwarder } from './forward.js'
import { checkOrigin, preflightHeaders } from './origin.js'
import { serveRouted } from './routing.js'

export interface RoutesOptions {
  server: ParleyServer
  options: ResolvedOptions
  /** True when Parley registered @fastify/websocket itself (its error handler is Parley's). */
  ownsWebSocketPlugin: boolean
}

type Query = Record<string, string | string[] | undefined>
type HttpKind = 'sse' | 'polling'

const OTHER_METHODS = ['HEAD', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'POST'] as const

/**
 * The three endpoints under `path`: `/ws`, `/sse`, `/poll`. Plain Fastify routes, so that the
 * application's own hooks (onRequest, ...) run for every transport request.
 */
export async function parleyRoutes(
  app: FastifyInstance,
  { server, options, ownsWebSocketPlugin }: RoutesOptions,
): Promise<void> {
  // Bodies are read by hand, under maxPayload and whatever their content type.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload))

  const base = options.path === '/' ? '' : options.path
  const enabled = (name: TransportName) => options.transports.includes(name)
  /** POSTs in progress, per session, across both HTTP transports. */
  const posting = new WeakSet<Session>()

  const fail = (reply: FastifyReply, status: number, code: string, message: string, cors: HeaderBag = {}) =>
    reply
      .code(status)
      .headers({ ...cors, 'Cache-Control': 'no-store' })
      .type('application/json; charset=utf-8')
      .send({ code, message })

  const versionOk = (request: FastifyRequest) => (request.query as Query).v === String(PROTOCOL_VERSION)

  // Requests that another node routes here (see Adapter.routeRequest) go through these routes.
  server.serveRoutedWith((routed) => serveRouted(app, routed))

  // Requests for sessions that another node holds are handed to that node (no sticky sessions).
  const forwarder = new Forwarder({
    adapter: server.adapter,
    log: app.log,
    connectTimeout: options.handshakeTimeout,
    highWaterMark: options.highWaterMark,
    maxPayload: options.maxPayload,
    unreachable: (node, err) => server.ownerUnreachable(node, err),
  })
  app.addHook('preClose', (done) => {
    forwarder.close()
    done()
  })

  // --- WebSocket -----------------------------------------------------------------------------

  app.route({
    method: 'GET',
    url: `${base}/ws`,
    exposeHeadRoute: false,
    // Runs before the upgrade: a refusal here is a plain HTTP answer, not a 101.
    onRequest: async (request, reply) => {
      if (!enabled('websocket'))
        return fail(reply, 404, ErrorCode.TRANSPORT_DISABLED, 'the websocket transport is disabled')
      if (!versionOk(request))
        return fail(reply, 400, ErrorCode.UNSUPPORTED_VERSION, `this server speaks v=${PROTOCOL_VERSION}`)
      if (!checkOrigin(request, options.allowedOrigins).allowed)
        return fail(reply, 403, ErrorCode.ORIGIN_FORBIDDEN, 'this origin is not allowed')
      if (server.closing)
        return fail(reply, 503, ErrorCode.SERVER_SHUTTING_DOWN, 'the server is shutting down')
      if (request.ws) {
        const offered = String(request.headers['sec-websocket-protocol'] ?? '')
          .split(',')
          .map((p) => p.trim())
        if (!offered.includes(WS_SUBPROTOCOL)) {
          return fail(reply, 400, ErrorCode.UNSUPPORTED_VERSION, `offer the subprotocol ${WS_SUBPROTOCOL}`)
        }
        upgrades.set(request.raw, reply.raw)
      }
    },
    handler: (_request, reply) => fail(reply, 400, ErrorCode.BAD_REQUEST, 'expected a WebSocket upgrade'),
    wsHandler: (socket: WebSocket, request: FastifyRequest) => acceptWebSocket(socket, request),
  })
  app.route({
    method: [...OTHER_METHODS],
    url: `${base}/ws`,
    handler: (_request, reply) => fail(reply, 405, ErrorCode.METHOD_NOT_ALLOWED, 'use GET with an upgrade'),
  })

  /** The stand-in HTTP response of each upgrade request, released once the WebSocket is open. */
  const upgrades = new WeakMap<IncomingMessage, ServerResponse>()

  function acceptWebSocket(ws: WebSocket, request: FastifyRequest): void {
    const socket = request.raw.socket
    const handshake = handshakeRequest(request)
    const log = request.log
    releaseUpgrade(ws, socket, upgrades.get(request.raw), ownsWebSocketPlugin ? log : undefined)
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
      packet: (packet) => {
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
      invalid: (error) => {
        if (settled) return
        settle()
        server.trackPending(transport, false)
        refuse(error.code, error.message)
      },
      close: () => {
        clearTimeout(timer)
        server.trackPending(transport, false)
      },
    })

    /** A resume of a session that another node holds goes there; anything else is ours. */
    async function handOverOrHandshake(hello: HelloPacket) {
      if (hello.sid !== undefined && !server.sessionFor(hello.sid)) {
        const owner = await forwarder.ownerOf(hello.sid, request, 'websocket')
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

  // --- SSE and long-polling ------------------------------------------------------------------

  for (const [segment, kind] of [
    ['sse', 'sse'],
    ['poll', 'polling'],
  ] as const) {
    app.route({
      method: ['GET', ...OTHER_METHODS],
      url: `${base}/${segment}`,
      exposeHeadRoute: false,
      // In a hook, so that it also runs for upgrade requests, which never reach a handler here.
      onRequest: async (request, reply) => screenHttp(kind, request, reply),
      handler: (request, reply) => handleHttp(kind, request, reply),
    })
  }

  /** Checks every SSE/polling request must pass; answers preflights. */
  async function screenHttp(kind: HttpKind, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
    if (!enabled(kind))
      return fail(reply, 404, ErrorCode.TRANSPORT_DISABLED, `the ${kind} transport is disabled`)
    const method = request.method
    if (method !== 'GET' && method !== 'POST' && method !== 'OPTIONS') {
      return fail(reply, 405, ErrorCode.METHOD_NOT_ALLOWED, 'use GET or POST')
    }
    if (!versionOk(request))
      return fail(reply, 400, ErrorCode.UNSUPPORTED_VERSION, `this server speaks v=${PROTOCOL_VERSION}`)
    const origin = checkOrigin(request, options.allowedOrigins)
    if (!origin.allowed) return fail(reply, 403, ErrorCode.ORIGIN_FORBIDDEN, 'this origin is not allowed')
    if (request.headers.upgrade !== undefined) {
      return fail(reply, 400, ErrorCode.UNEXPECTED_UPGRADE, `no upgrade on the ${kind} endpoint`, origin.cors)
    }
    if (method === 'OPTIONS') {
      return reply
        .code(204)
        .headers({ ...origin.cors, ...preflightHeaders(request) })
        .send()
    }
    return undefined
  }

  async function handleHttp(kind: HttpKind, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
    const method = request.method
    const cors = checkOrigin(request, options.allowedOrigins).cors

    const sid = (request.query as Query).sid
    if (Array.isArray(sid)) return fail(reply, 400, ErrorCode.BAD_REQUEST, 'one sid only', cors)
    if (method === 'POST' && tooLarge(request)) {
      if (sid !== undefined) server.sessionFor(sid)?.end(CloseReason.PAYLOAD_TOO_LARGE)
      return bodyTooLarge(reply, cors)
    }
    if (sid === undefined) {
      if (method === 'GET') return fail(reply, 400, ErrorCode.BAD_REQUEST, 'a GET needs a sid', cors)
      return handshakePost(kind, request, reply, cors)
    }

    if (server.closing)
      return fail(reply, 503, ErrorCode.SERVER_SHUTTING_DOWN, 'the server is shutting down', cors)
    const session = server.sessionFor(sid)
    if (method === 'GET' && session?.transport?.name !== kind) {
      // The session ended, or moved on, between two GETs: hand over its last words first.
      const last = server.takeLingering(sid, kind) as HttpTransport | undefined
      if (last) {
        reply.hijack()
        last.serveLast(reply.raw, cors)
        return reply
      }
    }
    if (!session) {
      // It may live on another node: then that node answers (no sticky sessions needed).
      const owner = await forwarder.ownerOf(sid, request, 'http')
      if (owner === undefined) {
        server.unknownSession(sid)
        return fail(reply, 400, ErrorCode.UNKNOWN_SESSION, 'no such session', cors)
      }
      let text = ''
      if (method === 'POST') {
        const body = await readRequestBody(request)
        if (!body.ok) {
          if (body.reason === 'aborted') return reply
          return bodyTooLarge(reply, cors)
        }
        text = body.text
      }
      if ((await forwarder.handOver(owner, request, reply, text)) !== 'unreachable') return reply
      return fail(reply, 400, ErrorCode.UNKNOWN_SESSION, 'the node of this session cannot be reached', cors)
    }
    const transport = session.transport
    if (!transport || transport.name !== kind) {
      return fail(reply, 400, ErrorCode.TRANSPORT_MISMATCH, `the session is not attached to ${kind}`, cors)
    }

    if (method === 'GET') {
      reply.hijack()
      if (transport instanceof SseTransport) transport.attachStream(reply.raw, cors)
      else if (transport instanceof PollingTransport) transport.hold(reply.raw, cors)
      return reply
    }

    // Upstream POST: one at a time per session, so that packets cannot overtake each other.
    if (posting.has(session)) {
      return fail(reply, 409, ErrorCode.REQUEST_IN_PROGRESS, 'another POST is in progress', cors)
    }
    posting.add(session)
    try {
      const body = await readRequestBody(request)
      if (!body.ok) {
        if (body.reason === 'aborted') return reply
        session.end(CloseReason.PAYLOAD_TOO_LARGE)
        return bodyTooLarge(reply, cors)
      }
      if (session.transport !== transport) {
        return fail(reply, 400, ErrorCode.TRANSPORT_MISMATCH, `the session is not attached to ${kind}`, cors)
      }
      const decoded = decodeBatch(body.text, { maxPayload: options.maxPayload })
      if (!decoded.ok) {
        ;(transport as HttpTransport).reject(decoded.error)
        return fail(reply, 400, decoded.error.code, decoded.error.message, cors)
      }
      ;(transport as HttpTransport).receive(decoded.packets)
      return reply
        .code(204)
        .headers({ ...cors, 'Cache-Control': 'no-store' })
        .send()
    } finally {
      posting.delete(session)
    }
  }

  async function handshakePost(
    kind: HttpKind,
    request: FastifyRequest,
    reply: FastifyReply,
    cors: HeaderBag,
  ): Promise<unknown> {
    if (server.closing)
      return fail(reply, 503, ErrorCode.SERVER_SHUTTING_DOWN, 'the server is shutting down', cors)
    const body = await readRequestBody(request)
    if (!body.ok) {
      if (body.reason === 'aborted') return reply
      return bodyTooLarge(reply, cors)
    }
    const decoded = decodeBatch(body.text, { maxPayload: options.maxPayload })
    if (!decoded.ok) return fail(reply, 400, decoded.error.code, decoded.error.message, cors)
    const [hello, ...rest] = decoded.packets
    if (hello?.type !== PacketType.HELLO || rest.length > 0) {
      return fail(reply, 400, ErrorCode.INVALID_PACKET, 'the handshake body is one HELLO packet', cors)
    }
    if (hello.sid !== undefined && !server.sessionFor(hello.sid)) {
      // A resume of a session that lives on another node: that node resumes it. When it cannot
      // be reached, the resume is ours: a session this node does not know (a new one).
      const owner = await forwarder.ownerOf(hello.sid, request, 'http')
      if (owner && (await forwarder.handOver(owner, request, reply, body.text)) !== 'unreachable')
        return reply
    }
    const transport =
      kind === 'sse'
        ? new SseTransport()
        : new PollingTransport(
            options.maxPayload,
            options.pollingCompression ? options.pollingCompression.threshold : false,
          )
    const refusal = await server.handshake(transport, hello as HelloPacket, handshakeRequest(request))
    if (refusal) return fail(reply, refusal.status, refusal.code, refusal.message, cors)
    const line = transport.answerLine
    if (line === undefined)
      return fail(reply, 503, ErrorCode.BAD_REQUEST, 'the handshake did not complete', cors)
    return reply
      .code(200)
      .headers({ ...cors, 'Cache-Control': 'no-store' })
      .type('text/plain; charset=utf-8')
      .send(line)
  }

  /**
   * 413 for a POST body past `maxPayload`. The connection closes after it: the rest of the body
   * may still be on its way, and reading it only to throw it away is not worth it.
   */
  function bodyTooLarge(reply: FastifyReply, cors: HeaderBag): FastifyReply {
    reply.header('Connection', 'close')
    return fail(
      reply,
      413,
      ErrorCode.PAYLOAD_TOO_LARGE,
      `the body is larger than ${options.maxPayload}`,
      cors,
    )
  }

  function readRequestBody(request: FastifyRequest) {
    const stream = bodyStream(request)
    return stream ? readBody(stream, options.maxPayload) : Promise.resolve({ ok: true as const, text: '' })
  }

  function tooLarge(request: FastifyRequest): boolean {
    const length = Number(request.headers['content-length'])
    return Number.isFinite(length) && length > options.maxPayload
  }
}

/** A body-less POST (no content type, length 0) never reaches the parser: it reads as ''. */
function bodyStream(request: FastifyRequest): Readable | undefined {
  const body = request.body as { pipe?: unknown } | undefined
  return body && typeof body.pipe === 'function' ? (body as Readable) : undefined
}

function handshakeRequest(request: FastifyRequest): HandshakeRequest {
  const query: Record<string, string> = {}
  for (const [key, value] of Object.entries(request.query as Query)) {
    if (typeof value === 'string') query[key] = value
  }
  return { headers: request.headers, query, address: request.ip }
}

/**
 * Lets the upgrade's request and its stand-in response go once the WebSocket is open; they
 * would otherwise live as long as it does (about 2 KB per connection): the response stays
 * assigned to the TCP socket, and @fastify/websocket's error listener holds both. With `log`
 * (Parley registered @fastify/websocket, so that listener is Parley's), the listener is
 * replaced by one that logs the same line without holding the request.
 */
function releaseUpgrade(
  ws: WebSocket,
  socket: IncomingMessage['socket'],
  response: ServerResponse | undefined,
  log: FastifyBaseLogger | undefined,
): void {
  if (response?.socket === socket) response.detachSocket(socket)
  if (log) {
    ws.removeAllListeners('error')
    ws.on('error', (err) => log.debug({ err }, 'parley: websocket error'))
  }
}
