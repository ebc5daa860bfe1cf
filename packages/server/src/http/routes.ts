import { type IncomingHttpHeaders, type IncomingMessage, METHODS, type ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'
import { finished } from 'node:stream/promises'
import {
  ErrorCode,
  type HelloPacket,
  type Packet,
  PacketType,
  PROTOCOL_VERSION,
  type TransportName,
} from '@parley/protocol'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import { defaults, type ResolvedOptions } from '../options.js'
import type { Refusal } from '../refusals.js'
import {
  mayHaveParams,
  NO_PARAMS,
  NO_SUCH_SESSION,
  type RouteParams,
  routeParams,
  sameParams,
} from '../route-params.js'
import type { ParleyServer } from '../server.js'
import type { Session } from '../session.js'
import { SHUTTING_DOWN } from '../shutting-down.js'
import type { ClosingWebSockets } from '../transports/closing-websockets.js'
import type { HeaderBag } from '../transports/http.js'
import {
  type HttpTransportName,
  httpSegments,
  httpTransports,
  mountBase,
  prefixedBase,
} from '../transports/registry.js'
import { answer } from './answer.js'
import {
  type BodyFailure,
  type BodyResult,
  decodeBody,
  EMPTY_BODY,
  linesOfBody,
  NOT_UTF8_TEXT,
} from './body.js'
import { clientLeft } from './client-left.js'
import { serveClientScript } from './client-script.js'
import { ClientTracking } from './client-tracking.js'
import {
  type ClosingAnswers,
  disabledMessage,
  type EndpointAnswer,
  EXPECTED_UPGRADE,
  HTTP_METHODS,
  notAttachedMessage,
  OTHER_VERSION,
} from './closing-answers.js'
import type { ClosingForwards } from './closing-forwards.js'
import { closingConnection, endsConnection } from './connection-close.js'
import { clientAddress } from './fastify-closing.js'
import { answerToFastifyError, failedRequestsLog } from './fastify-errors.js'
import { Forwarder, type HandedOff, type HandOver, isHandedOff, type Owner } from './forward.js'
import { outlastHandlerTimeout } from './handler-timeout.js'
import { closeAnswer } from './handoff-close.js'
import type { ForwardAtClose, UpgradeAtClose } from './last-words.js'
import { lingerOnClose } from './lingering-close.js'
import { redactingRequestSerializer } from './log-redaction.js'
import {
  checkOrigin,
  forbiddenMessage,
  OriginRefusals,
  type OriginVerdict,
  preflightHeaders,
} from './origin.js'
import { goodbyeEndpoint } from './relayed-goodbye.js'
import {
  bodyTooLarge,
  endsWherever,
  heardWhileDisabled,
  ROUTED_HEADER,
  SENT_ON,
  serveRouted,
  TOO_LARGE,
} from './routing.js'
import { acksOf, takeGetAck } from './session-get.js'
import { IdleSseUpstream } from './sse-upstream.js'
import { upgradeRefusal, versionAsText } from './upgrade-refusal.js'
import type { GoodbyeHeard, TakePost, UpstreamPosts } from './upstream-post.js'
import { VersionRefusals, versionRefusal } from './version-refusals.js'
import { handshakeRequest, WebSocketHandshakes } from './websocket-handshake.js'

export interface RoutesOptions {
  server: ParleyServer
  options: ResolvedOptions
  /** The application set `serveClient: true` itself (not left to its default): see client-script.ts. */
  serveClientAsked: boolean
  /** True when Parley registered @fastify/websocket itself (its error handler is Parley's). */
  ownsWebSocketPlugin: boolean
  /** The WebSockets waiting for their client's close frame (cut when the server closes). */
  closingWebSockets: ClosingWebSockets
  /** The requests forwarded to other nodes, ending as the server closes (cut when it has). */
  closingForwards: ClosingForwards
  /** What the endpoints answer while Fastify closes (see closing-answers.ts). */
  closingAnswers: ClosingAnswers
  /** Does what sending one of those answers does besides (see `LastWordsOptions.sent`). */
  closingSent: (answer: EndpointAnswer) => void
  /** Reads the bodies, and hands the upstream POSTs to their sessions (shared with the close). */
  posts: UpstreamPosts
  /** Takes a POST of a live session routed here while the app closes (see `TakePost`). */
  closingPost: TakePost
  /** Hands over how a POST of a session another node holds is sent on at close. */
  forwardingAtClose: (forward: ForwardAtClose) => void
  /** Hands over how an upgrade of the WebSocket endpoint is taken at close. */
  upgradingAtClose: (upgrade: UpgradeAtClose) => void
}

type Query = Record<string, string | string[] | undefined>
type HttpKind = HttpTransportName

/**
 * Every method Node's parser hands to a route (it hands CONNECT to the server's `connect` event
 * instead): the endpoints answer each, those they do not serve with a coded 405.
 */
const ROUTED_METHODS = METHODS.filter((method) => method !== 'CONNECT')

/**
 * The three endpoints under `path`: `/ws`, `/sse`, `/poll`. Plain Fastify routes, so that the
 * application's own hooks (onRequest, ...) run for every transport request.
 */
export async function parleyRoutes(
  app: FastifyInstance,
  {
    server,
    options,
    serveClientAsked,
    ownsWebSocketPlugin,
    closingWebSockets,
    closingForwards,
    closingAnswers,
    closingSent,
    posts,
    closingPost,
    forwardingAtClose,
    upgradingAtClose,
  }: RoutesOptions,
): Promise<void> {
  // Bodies are read by hand, under maxPayload and whatever their content type.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload))
  // Fastify routes only the methods it knows: any other (PROPFIND, PURGE, ...) would get its
  // plain 404 rather than the endpoints' 405. Adding them affects the whole instance (Fastify
  // keeps one list), so only those it lacks are added, with a body as most of them may carry.
  for (const method of ROUTED_METHODS) {
    if (!app.supportedMethods.includes(method)) app.addHttpMethod(method, { hasBody: true })
  }

  const base = mountBase(options.path)
  const parameterised = mayHaveParams(prefixedBase(app.prefix, base))
  /** A request's route parameters, for the tenant check: no copy under a route without any. */
  const paramsOfRequest = (request: FastifyRequest): RouteParams =>
    parameterised ? routeParams(request.params) : NO_PARAMS
  const enabled = (name: TransportName) => options.transports.includes(name)
  /** 404 for a transport left out of `transports`; names those offered (OPEN lists them anyway). */
  const disabled = (reply: FastifyReply, name: TransportName, cors: HeaderBag = {}) =>
    fail(reply, 404, ErrorCode.TRANSPORT_DISABLED, disabledMessage(name, options.transports), cors)
  const bodies = posts.bodies
  const idleSseUpstream = options.closeIdleSseUpstream ? new IdleSseUpstream() : undefined

  const originRefusals = new OriginRefusals(app.log)
  server.atClose(() => originRefusals.close())
  const originOf = (request: FastifyRequest) => checkOrigin(request, options.allowedOrigins, originRefusals)
  const versionRefusals = new VersionRefusals(app.log)
  server.atClose(() => versionRefusals.close())

  /**
   * A coded error answer; see `answer` for one whose request was to be forwarded. `middleware`:
   * see `Refusal.middleware`.
   */
  const fail = (
    reply: FastifyReply,
    status: number,
    code: string,
    message: string,
    cors: HeaderBag = {},
    middleware?: true,
  ) =>
    answer(
      reply,
      status,
      { ...cors, 'Cache-Control': 'no-store' },
      'application/json; charset=utf-8',
      JSON.stringify(middleware ? { code, message, middleware } : { code, message }),
    )

  const versionOk = (request: FastifyRequest) => (request.query as Query).v === String(PROTOCOL_VERSION)

  /** 400 for a client of another protocol version, and a log line (one per burst). */
  const refuseVersion = (
    reply: FastifyReply,
    transport: TransportName,
    message: string,
    headers: HeaderBag = {},
  ) => {
    const request = reply.request
    versionRefusals.record(versionRefusal(transport, (request.query as Query).v, request.headers))
    return fail(reply.headers(headers), 400, ErrorCode.UNSUPPORTED_VERSION, message)
  }

  /** 405, with the methods the endpoint serves. */
  const notAllowed = (reply: FastifyReply, allowed: string, message: string, cors: HeaderBag = {}) =>
    fail(reply.header('Allow', allowed), 405, ErrorCode.METHOD_NOT_ALLOWED, message, cors)

  const failedRequests = failedRequestsLog(app.log)
  server.atClose(() => failedRequests.close())

  /**
   * Every route's error handler: Fastify's own errors answered as the endpoints' other errors
   * are (docs/errors.md), the application's passed on to its own handler (see fastify-errors.ts).
   */
  const errorHandler = (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const answer = answerToFastifyError(error, request)
    if (!answer) throw error
    if (answer.status >= 500) failedRequests.record({ err: error, code: answer.code })
    if (answer.closeConnection) closeUnread(reply)
    const cors = originOf(request).cors
    return fail(reply, answer.status, answer.code, answer.message, cors)
  }

  const script = options.serveClient
    ? serveClientScript(app, base, errorHandler, serveClientAsked)
    : undefined
  if (script) {
    // Any other method gets the endpoints' coded 405 rather than Fastify's 404, which answers a
    // body it cannot parse with a code of Fastify's own (FST_ERR_CTP_INVALID_MEDIA_TYPE). In a
    // hook, before Fastify looks at the body.
    const refuseScript = async (_request: FastifyRequest, reply: FastifyReply) =>
      notAllowed(reply, 'GET, HEAD', 'use GET')
    app.route({
      method: ROUTED_METHODS.filter((method) => method !== 'GET' && method !== 'HEAD'),
      url: script,
      errorHandler,
      onRequest: refuseScript,
      handler: refuseScript,
    })
  }

  /** 403 for a refused origin, readable by the page that was refused, and a log line. */
  const refuseOrigin = (reply: FastifyReply, origin: OriginVerdict) => {
    originRefusals.record(origin)
    return fail(reply, 403, ErrorCode.ORIGIN_FORBIDDEN, forbiddenMessage(origin), origin.cors)
  }

  // Requests that another node routes here (see Adapter.routeRequest) go through these routes.
  // While the app closes, Fastify routes none: they get the endpoints' answers at close.
  server.serveRoutedWith((routed) =>
    serveRouted(
      app,
      routed,
      closingAnswers,
      closingSent,
      (sid, kind) => server.takeLingering(sid, kind)?.http,
      (sid, kind) => server.attachedHttp(sid, kind),
      closingPost,
      forwardAtClose,
      (sid) => server.finishing(sid),
    ),
  )

  // Requests for sessions that another node holds are handed to that node (no sticky sessions).
  // Those that reach it while Fastify refuses requests at close name their client as a route's.
  const addressOf = clientAddress(app)
  const forwarder = new Forwarder({
    adapter: server.adapter,
    log: app.log,
    connectTimeout: options.handshakeTimeout,
    highWaterMark: options.highWaterMark,
    maxPayload: options.maxPayload,
    closingWebSockets,
    closingForwards,
    retrySpread: (options.handoff || defaults.handoff).retrySpread,
    addressOf,
    unreachable: (node, err) => server.ownerUnreachable(node, err),
    goodbyeUnsent: (node, err) => server.goodbyeUnsent(node, err),
    noOtherNode: (err) => server.noOtherNode(err),
    corsOf: (request) => originOf(request).cors,
    goodbyeEndpoint: goodbyeEndpoint(options.transports),
    ca: options.forwarding.ca,
  })
  /**
   * The node that holds session `sid`, for an SSE or polling request (see `Forwarder.ownerOf`):
   * a GET, or a POST whose body is not read yet, whose handlerTimeout still counts. A lookup that
   * takes longer goes on (see handler-timeout.ts), and the request is forwarded all the same.
   */
  const ownerOf = (sid: string, reply: FastifyReply) =>
    outlastHandlerTimeout(
      reply,
      forwarder.ownerOf(sid, reply.request, 'http', reply.raw, paramsOfRequest(reply.request)),
    )
  // While Fastify refuses requests at close, a POST or a GET of a session another node holds
  // goes there all the same, and a resume to the node that is to claim or holds its session, as
  // on the routes below (until the forwarder closes with the server). So too for one another node
  // routes here through the adapter (see `serveRouted`): a goodbye sent on goes on from here.
  const forwardAtClose: ForwardAtClose = async (req, res, { sid, kind, headers, params }, unsent) => {
    if (sid === undefined) return resumeAtClose(req, res, kind, headers, unsent, params)
    const post = req.method === 'POST'
    if (post && req.headers[ROUTED_HEADER] === SENT_ON) {
      // Sent on by another closing node, as the route takes it (see `handedOffPost`).
      return handedOffAtClose(sid, kind, req, res, headers, () => bodies.read(req, res))
    }
    const owner = await forwarder.ownerOf(sid, req, 'http', res, params)
    if (isHandedOff(owner) && post) {
      return handedOffAtClose(sid, kind, req, res, headers, () => bodies.read(req, res, true))
    }
    if (isHandedOff(owner)) return handedOffGetAtClose(kind, res, headers)
    if (owner === undefined) return unsent
    let text = ''
    let body: BodyResult = EMPTY_BODY
    if (post) {
      body = await bodies.read(req, res, owner.handingOff)
      if (!body.ok) return posts.notRead(body.reason, headers)
      // Checked here, where the bytes are: the owner gets text (see NOT_UTF8_TEXT).
      text = body.utf8 ? body.text() : NOT_UTF8_TEXT
    }
    const sent = await forwarder.atClose(owner, req, res, text, { cors: headers, kind })
    if (sent !== 'unreachable') return undefined
    if (owner.handingOff && post) return handedOffAtClose(sid, kind, req, res, headers, async () => body)
    if (owner.handingOff) return handedOffGetAtClose(kind, res, headers)
    return unsent
  }
  forwardingAtClose(forwardAtClose)
  /**
   * A GET of a session whose node handed it off and is gone, at close: answered as `handedOff`
   * answers it on the route, CLOSE 'server handoff' (the client resumes with its quiet time,
   * telling its application nothing), where `unsent` (503) would fail its transport.
   */
  function handedOffGetAtClose(kind: HttpKind, res: ServerResponse, cors: HeaderBag): undefined {
    if (res.headersSent || res.destroyed) return undefined
    const { type, body } = handedOffAnswer(kind)
    res.writeHead(200, {
      ...cors,
      ...closingConnection(res.req),
      'Cache-Control': 'no-store',
      'Content-Type': type,
      'Content-Length': Buffer.byteLength(body),
    })
    res.end(body)
    return undefined
  }
  /**
   * A POST of a session whose node handed it off and is gone, at close (see `forwardingAtClose`),
   * answered as `handedOffPost` answers it during the drain: its goodbye goes on to a live node,
   * which ends the session; any other gets 204, none of it used, as its GETs get CLOSE 'server
   * handoff' here (see `handedOffGetAtClose`), and the client resumes with that CLOSE's quiet
   * time, then sends it again. A 503 (`unsent`) would fail its transport: its application would
   * hear a transport_error, for a session that loses nothing.
   */
  async function handedOffAtClose(
    sid: string,
    kind: HttpKind,
    req: IncomingMessage,
    res: ServerResponse,
    cors: HeaderBag,
    read: () => Promise<BodyResult>,
  ): Promise<EndpointAnswer | undefined> {
    const goodbye = (packets: readonly Packet[], text: string) =>
      goodbyeOfHandedOff(
        sid,
        packets,
        req,
        res,
        async () => server.relayedGoodbye(sid, packets),
        (other) => forwarder.atClose(other, req, res, text, { cors, kind }),
      )
    return (await posts.takeHandedOff(cors, read, goodbye)).answer
  }
  /**
   * A handshake POST at close, sent on as `handshakePost` sends it when its HELLO resumes a session
   * this node handed off (to a live node, which claims it) or one another node holds; `unsent`
   * (the client tries again) for any other, this node taking no session any more.
   */
  async function resumeAtClose(
    req: IncomingMessage,
    res: ServerResponse,
    kind: HttpKind,
    headers: HeaderBag,
    unsent: EndpointAnswer,
    params: RouteParams | undefined,
  ): Promise<EndpointAnswer | undefined> {
    const body = await bodies.read(req, res)
    if (!body.ok) return posts.notRead(body.reason, headers)
    const decoded = decodeBody(linesOfBody(body), options.maxPayload)
    const [hello, ...rest] = decoded.ok ? decoded.packets : []
    if (hello?.type !== PacketType.HELLO || rest.length > 0 || hello.sid === undefined) return unsent
    const to = await resumeGoesTo(hello.sid, req, res, params)
    // A session another node is handing off is claimed by a node that takes sessions: not this one.
    if (to.found === undefined || isHandedOff(to.found)) return unsent
    const sent = forwarder.atClose(to.found, req, res, body.text(), { cors: headers, kind })
    // The node closes only once the answer went back, or was cut (see Drain.sendingOn).
    if (to.handedOff) server.sendingOn(sent.then(() => finished(res)))
    return (await sent) === 'unreachable' ? unsent : undefined
  }

  /**
   * Where a handshake POST's HELLO that resumes `sid` goes, on the route and at close alike: for
   * a session this draining node handed off (`handedOff`), a live node, which claims it now,
   * rather than the client after a refusal and a backoff (perhaps too late: see
   * Adapter.anotherNode); for one that lives on another node, that node, or `HandedOff` when
   * that node is handing it off (then a node that takes sessions claims it); none for one this
   * node holds. `res`: the POST's response (see `Forwarder.ownerOf`); `params`: the request's
   * route parameters, when known (a session another node holds under others is none of its). On
   * the route, the application's handlerTimeout no longer counts by then: the HELLO came in the
   * body, which is read (see handler-timeout.ts).
   */
  async function resumeGoesTo(
    sid: string,
    request: { headers: IncomingHttpHeaders },
    res: ServerResponse,
    params: RouteParams | undefined,
  ): Promise<ResumeGoesTo> {
    if (server.handedOff(sid, params))
      return { found: await forwarder.anotherNode(sid, request, 'http', res), handedOff: true }
    if (server.sessionFor(sid)) return { found: undefined, handedOff: false }
    return { found: await forwarder.resumeOwner(sid, request, 'http', res, params), handedOff: false }
  }
  // Before @fastify/websocket closes its clients (without a code): relays close with 1001, after
  // a CLOSE 'server handoff' to their clients, as the streams and held polls forwarded end.
  server.atClose(() => forwarder.close())
  // Nothing a body still on its way could say matters once the sessions end.
  server.atClose(() => posts.close())
  const websockets = new WebSocketHandshakes({
    server,
    log: app.log,
    options,
    forwarder,
    ownsWebSocketPlugin,
    // Where Parley registered @fastify/websocket, right after it: its listener comes before the
    // application's. Where the application did, before Parley, that registration's close hook
    // runs before the drain: tracked, Parley's WebSockets would close under it, bare.
    tracking: new ClientTracking(app.websocketServer),
    closing: closingWebSockets,
    addressOf,
    // Parley's own registration never sets it; the application's may, for its other routes.
    checkUtf8: app.websocketServer.options.skipUTF8Validation === true,
  })
  // While Fastify refuses requests at close, an upgrade the route below would take is taken as it
  // takes it while the node drains: only the HELLO tells a resume to relay to the node that holds
  // (or is to claim) its session from a new session, refused then. Once the server has closed,
  // the route's 503 (the relays end with the forwarder, with CLOSE 'server handoff'). So too with
  // the application's own @fastify/websocket: registered before the plugin, its close hook has
  // closed its WebSocketServer before the drain, which would answer a bare 503 without a code.
  upgradingAtClose((req, socket, head, params) => {
    if (server.closed || !ownsWebSocketPlugin) return false
    const wss = app.websocketServer
    wss.handleUpgrade(req, socket, head, (ws) => {
      // As @fastify/websocket announces the WebSockets of its routes (see ClientTracking).
      wss.emit('connection', ws, req)
      websockets.acceptAtClose(ws, req, params)
    })
    return true
  })

  // --- WebSocket -----------------------------------------------------------------------------

  app.route({
    method: 'GET',
    url: `${base}/ws`,
    exposeHeadRoute: false,
    errorHandler,
    // Runs before the upgrade: a refusal here is a plain HTTP answer, not a 101.
    onRequest: async (request, reply) => {
      if (!enabled('websocket')) return disabled(reply, 'websocket')
      if (!versionOk(request)) return refuseVersion(reply, 'websocket', OTHER_VERSION)
      const origin = originOf(request)
      if (!origin.allowed) return refuseOrigin(reply, origin)
      // What is wrong with the request itself is said before the close is: another server
      // would refuse it all the same.
      if (!request.ws) return fail(reply, 400, ErrorCode.BAD_REQUEST, EXPECTED_UPGRADE)
      versionAsText(request.headers)
      const refusal = upgradeRefusal(request.headers, app.websocketServer.options)
      if (refusal?.code === ErrorCode.UNSUPPORTED_VERSION)
        return refuseVersion(reply, 'websocket', refusal.message, refusal.headers)
      if (refusal) return fail(reply.headers(refusal.headers ?? {}), 400, refusal.code, refusal.message)
      // While the node drains, an upgrade goes through: its HELLO is then refused with ERROR
      // PARLEY_SERVER_SHUTTING_DOWN, a code the client reads (and tries another node), where a
      // refused upgrade tells a browser nothing.
      if (server.closed) return fail(reply, 503, ErrorCode.SERVER_SHUTTING_DOWN, SHUTTING_DOWN)
      websockets.upgrading(request.raw, reply.raw)
    },
    handler: (_request, reply) => fail(reply, 400, ErrorCode.BAD_REQUEST, EXPECTED_UPGRADE),
    wsHandler: (socket: WebSocket, request: FastifyRequest) => websockets.accept(socket, request),
  })
  app.route({
    method: ROUTED_METHODS.filter((method) => method !== 'GET'),
    url: `${base}/ws`,
    errorHandler,
    // In a hook, before Fastify looks at a body or @fastify/websocket hands an upgrade to ws.
    onRequest: async (_request, reply) => notAllowed(reply, 'GET', 'use GET with an upgrade'),
    handler: (_request, reply) => notAllowed(reply, 'GET', 'use GET with an upgrade'),
  })

  // --- SSE and long-polling ------------------------------------------------------------------

  // Their URLs carry the session id, a secret: logged masked (see log-redaction.ts).
  const logSerializers = { req: redactingRequestSerializer(app.log) }
  for (const [kind, segment] of Object.entries(httpSegments) as [HttpKind, string][]) {
    app.route({
      method: ROUTED_METHODS,
      url: `${base}/${segment}`,
      exposeHeadRoute: false,
      logSerializers,
      errorHandler,
      // In a hook, so that it also runs for upgrade requests, which never reach a handler here.
      onRequest: async (request, reply) => screenHttp(kind, request, reply),
      handler: (request, reply) => handleHttp(kind, request, reply),
    })
  }

  /** Checks every SSE/polling request must pass; answers preflights. */
  async function screenHttp(kind: HttpKind, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
    const origin = originOf(request)
    // Each refusal with the CORS headers the page's other answers get: a page on another origin
    // reads it (its client acts on the code: steps down from a disabled transport, stops on
    // another version) rather than a failed request, which it tries again.
    if (!enabled(kind) && !heardWhileDisabled(request.method, request.headers, () => heldHere(request)))
      return disabled(reply, kind, origin.cors)
    const method = request.method
    if (method !== 'GET' && method !== 'POST' && method !== 'OPTIONS')
      return notAllowed(reply, HTTP_METHODS, 'use GET or POST', origin.cors)
    if (!versionOk(request)) return refuseVersion(reply, kind, OTHER_VERSION, origin.cors)
    if (!origin.allowed) return refuseOrigin(reply, origin)
    if (request.headers.upgrade !== undefined) {
      return fail(reply, 400, ErrorCode.UNEXPECTED_UPGRADE, `no upgrade on the ${kind} endpoint`, origin.cors)
    }
    if (method === 'OPTIONS') {
      return reply
        .code(204)
        .headers({ ...origin.cors, ...preflightHeaders(request) })
        .send()
    }
    if (method === 'POST') acceptAnyContentType(request)
    return undefined
  }

  /**
   * Whether the sid `request` names is of a session here (live, or frozen to hand off or move),
   * under the request's route parameters: one under others is none of its (another tenant's).
   */
  function heldHere(request: FastifyRequest): boolean {
    const sid = (request.query as Query).sid
    if (typeof sid !== 'string' || server.sessionFor(sid) === undefined) return false
    const params = server.paramsOf(sid)
    return params === undefined || sameParams(params, paramsOfRequest(request))
  }

  /** Whether `sid`'s session is live here (not frozen) on no transport, or on another than `kind`. */
  function leftHere(sid: string, kind: HttpKind): boolean {
    const session = server.sessionFor(sid)
    return session !== undefined && session.state !== 'frozen' && session.transport?.name !== kind
  }

  async function handleHttp(kind: HttpKind, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
    const method = request.method
    const cors = originOf(request).cors

    const sid = (request.query as Query).sid
    if (Array.isArray(sid)) return fail(reply, 400, ErrorCode.BAD_REQUEST, 'one sid only', cors)
    const params = sid === undefined ? undefined : server.paramsOf(sid)
    if (sid !== undefined && params && !sameParams(params, paramsOfRequest(request))) {
      // A session found by its sid alone, under other route parameters (another tenant of
      // `/:tenant`), here or sent on here by the node it reached: it stays its own route's, and
      // the request gets what one naming no session gets at this point, a body past maxPayload
      // and a closed server included, so that its sid tells another tenant nothing.
      if (method === 'POST' && tooLarge(request)) return refuseTooLargeFor(undefined, request, reply, cors)
      if (server.closed) return fail(reply, 503, ErrorCode.SERVER_SHUTTING_DOWN, SHUTTING_DOWN, cors)
      return unknownSession(reply, sid, NO_SUCH_SESSION, cors)
    }
    if (method === 'POST' && sid !== undefined && endsWherever(request.headers, () => leftHere(sid, kind))) {
      // A relayed goodbye whose session moved here, or whose relay closed (see `endsWherever`): it
      // ends the session whatever transport it is on or awaits, during the close too; sent on no
      // further.
      const read = () => readRequestBody(request, reply)
      const end = (packets: readonly Packet[]) => {
        const known = server.relayedGoodbye(sid, packets)
        // Answered 400 PARLEY_UNKNOWN_SESSION, as any request of a session this node does not know.
        if (!known) server.unknownSession(sid)
        return known
      }
      return send(reply, (await posts.takeGoodbyeOn(cors, read, end)).answer)
    }
    if (method === 'POST' && tooLarge(request)) {
      const session = sid === undefined ? undefined : server.sessionFor(sid)
      if (sid !== undefined && !session) {
        const owner = await ownerOf(sid, reply)
        return refuseTooLargeFor(
          owner === undefined || isHandedOff(owner) ? undefined : owner,
          request,
          reply,
          cors,
        )
      }
      return refuseTooLarge(reply, kind, cors, session, session?.transport?.name === kind)
    }
    if (sid === undefined) {
      if (method === 'GET') return fail(reply, 400, ErrorCode.BAD_REQUEST, 'a GET needs a sid', cors)
      return handshakePost(kind, request, reply, cors)
    }

    const session = server.sessionFor(sid)
    if (method === 'GET' && session?.transport?.name !== kind) {
      // The session ended, or moved on, between two GETs: hand over its last words first
      // (during a shutdown too: the CLOSE 'server shutdown' of one waits for its next GET).
      const last = server.takeLingering(sid, kind)?.http
      if (last) {
        reply.hijack()
        last.serveLast(reply.raw, cors)
        return reply
      }
    }
    // A draining node still serves requests: its sessions' (the CLOSE 'server handoff' of one
    // waits for its next GET), and those it forwards to other nodes.
    if (server.closed) return fail(reply, 503, ErrorCode.SERVER_SHUTTING_DOWN, SHUTTING_DOWN, cors)
    if (!session) {
      if (method === 'POST' && server.endedLingering(sid, kind)) {
        // Ended, its last words (the ACK it owed, its CLOSE) waiting for the next GET on this
        // transport: a refusal would fail the client's transport before that GET, and the
        // client would send again, into its next session, what that ACK covers. None of the
        // body is used (the session is over): what it carries was never acknowledged, and the
        // client sends it into its next session.
        return takeUnused(request, reply, cors)
      }
      if (method === 'POST' && request.headers[ROUTED_HEADER] === SENT_ON) {
        // Sent on by a closing node: a POST of a session whose node handed it off and is gone,
        // whose goodbye that node no longer claims the session for (see `goodbyeOfHandedOff`).
        return handedOffPost(sid, kind, request, reply, cors, () => readRequestBody(request, reply))
      }
      // It may live on another node: then that node answers (no sticky sessions needed).
      const owner = await ownerOf(sid, reply)
      if (isHandedOff(owner)) {
        if (method === 'GET') return handedOff(kind, reply, cors)
        return handedOffPost(sid, kind, request, reply, cors, () => readRequestBody(request, reply, true))
      }
      if (owner === undefined) return unknownSession(reply, sid, NO_SUCH_SESSION, cors)
      let text = ''
      let body: BodyResult = EMPTY_BODY
      if (method === 'POST') {
        body = await readRequestBody(request, reply, owner.handingOff)
        if (!body.ok) {
          if (body.reason === 'too large') return refuseTooLargeFor(owner, request, reply, cors)
          return bodyNotRead(reply, body.reason, cors)
        }
        // Checked here, where the bytes are: the owner gets text (see NOT_UTF8_TEXT).
        text = body.utf8 ? body.text() : NOT_UTF8_TEXT
      }
      if ((await forwarder.handOver(owner, request, reply, text, kind)) !== 'unreachable') return reply
      if (owner.handingOff && method === 'GET') return handedOff(kind, reply, cors)
      if (owner.handingOff) return handedOffPost(sid, kind, request, reply, cors, async () => body)
      return unknownSession(reply, sid, 'the node of this session cannot be reached', cors)
    }
    if (method === 'POST' && session.state === 'frozen') {
      // Handed off (or about to be): nothing more is used here, and nothing of it was
      // acknowledged, so the client sends it again to the node that takes over; but its goodbye
      // ends the session (see `UpstreamPosts.takeFrozen`). A refusal would instead fail its
      // transport before it reads the CLOSE 'server handoff' its next GET gets. A body past
      // maxPayload is refused all the same (413), as it would be anywhere, but leaves the
      // session alone (see `refuseTooLarge`).
      return send(
        reply,
        (await posts.takeFrozen(session, cors, () => readRequestBody(request, reply))).answer,
      )
    }
    // Adopted from a drain, its client not back yet: a request of the client's old transport
    // (a poll or a stream held up on its way, a POST sent before the CLOSE 'server handoff' was
    // read) is answered as the node that handed the session off would have, or a live node for
    // it: CLOSE 'server handoff' for a GET, 204 with nothing used for a POST but its goodbye.
    // The client resumes, quietly, and finds the session here. Refused as not attached, it would
    // fail the client's transport, and its application would hear of it.
    if (session.adoptedAway) {
      if (method === 'GET') return handedOff(kind, reply, cors)
      return handedOffPost(sid, kind, request, reply, cors, () => readRequestBody(request, reply))
    }
    const transport = session.transport
    const http = transport?.name === kind ? transport.http : undefined
    if (!transport || !http) return notAttached(reply, kind, cors)

    if (method === 'GET') {
      const taken = takeGetAck(http, acksOf((request.query as Query).ack))
      if (!taken.ok) return fail(reply, 400, taken.error.code, taken.error.message, cors)
      reply.hijack()
      http.downstream(reply.raw, cors, taken.ack)
      return reply
    }

    // Upstream POST: one at a time per transport (see `UpstreamPosts`).
    const outcome = await posts.take(kind, session, transport, http, cors, () =>
      readRequestBody(request, reply),
    )
    if (kind === 'sse' && outcome.packets) idleSseUpstream?.answer(request, reply, session, outcome.packets)
    return send(reply, outcome.answer)
  }

  async function handshakePost(
    kind: HttpKind,
    request: FastifyRequest,
    reply: FastifyReply,
    cors: HeaderBag,
  ): Promise<unknown> {
    // While draining, a resume may still go to the node that holds its session; the handshake
    // refuses the rest (503 PARLEY_SERVER_SHUTTING_DOWN).
    if (server.closed) return fail(reply, 503, ErrorCode.SERVER_SHUTTING_DOWN, SHUTTING_DOWN, cors)
    const body = await readRequestBody(request, reply)
    if (!body.ok) return bodyNotRead(reply, body.reason, cors)
    const decoded = decodeBody(linesOfBody(body), options.maxPayload)
    if (!decoded.ok) return fail(reply, 400, decoded.error.code, decoded.error.message, cors)
    const [hello, ...rest] = decoded.packets
    if (hello?.type !== PacketType.HELLO || rest.length > 0) {
      return fail(reply, 400, ErrorCode.INVALID_PACKET, 'the handshake body is one HELLO packet', cors)
    }
    // The node the session was seen leaving, if it was (see `ParleyServer.handshake`).
    let leftNode: string | undefined
    if (hello.sid !== undefined) {
      const to = await resumeGoesTo(hello.sid, request, reply.raw, paramsOfRequest(request))
      if (to.handedOff) {
        if (to.found) {
          const sent = forwarder.handOver(to.found, request, reply, body.text(), kind)
          // The node closes only once the answer went back, or was cut (see Drain.sendingOn).
          server.sendingOn(sent.then(() => finished(reply.raw)))
          if ((await sent) !== 'unreachable') return reply
        }
      } else if (isHandedOff(to.found)) leftNode = to.found.handedOffBy
      else if (to.found) {
        // Its node resumes it. When that node cannot be reached, the resume is ours: a session
        // this node does not know (a new one), unless the session left that node meanwhile (see
        // `handshake`).
        const owner = to.found
        if ((await forwarder.handOver(owner, request, reply, body.text(), kind)) !== 'unreachable')
          return reply
        // On `reply.raw`: a closing node waits for this look too (see `Forwarder.close`), as
        // for the owner's, and answers the resume, which its close would otherwise cut.
        const moved = await forwarder.movedSince(owner, hello.sid, request, 'http', reply.raw)
        if (moved) leftNode = owner.node
      }
    }
    const transport = httpTransports[kind](options)
    // Until the session takes it, this POST is the transport's only connection: a client that
    // gives up on it (while the middleware runs) has left it, as one whose WebSocket closes. The
    // handshake then opens no session, and a resume takes nothing from the transport the client
    // may have resumed on meanwhile.
    const left = () => transport.close('normal')
    if (clientLeft(reply.raw)) left()
    else reply.raw.once('close', left)
    let refusal: Refusal | null
    try {
      refusal = await server.handshake(transport, hello as HelloPacket, handshakeRequest(request), leftNode)
    } catch (err) {
      // A failure inside the server (an adapter that could not put the socket in its own room,
      // its store away): the coded answer a WebSocket gets too, never the internal error's own
      // message. Nothing the client did: it tries again (see `Server.handshakeFailed`).
      const failed = server.handshakeFailed(err, kind)
      return fail(reply, failed.status, failed.code, failed.message, cors)
    } finally {
      reply.raw.off('close', left)
    }
    if (refusal) return fail(reply, refusal.status, refusal.code, refusal.message, cors, refusal.middleware)
    const line = transport.takeAnswerLine()
    // No answer: the client left while the server worked on it (see `left`) and reads none;
    // should one still be read, it says to try again.
    if (line === undefined) return fail(reply, 503, ErrorCode.SERVER_SHUTTING_DOWN, NOT_COMPLETED, cors)
    // On the raw response when an owner it went to first could not be reached (see `answer`).
    return answer(reply, 200, { ...cors, 'Cache-Control': 'no-store' }, 'text/plain; charset=utf-8', line)
  }

  /**
   * Closes the connection after the answer: the rest of the body may still be on it. Not for a
   * POST another node sent on without its body (the TOO_LARGE mark): nothing of it is left on the
   * connection between the nodes, which stays open for other requests; that node closes its
   * client's (see `Forwarder.tooLarge`). A client that sets the mark itself and sends a body
   * anyway has the rest read as its next request on its own connection: nothing it could not
   * send. Nor over HTTP/2, where the rest comes on the request's stream alone and the connection
   * carries the client's other streams (see `endsConnection`).
   */
  function closeUnread(reply: FastifyReply): void {
    if (reply.request.headers[ROUTED_HEADER] === TOO_LARGE) return
    if (!endsConnection(reply.request.raw)) return
    reply.header('Connection', 'close')
    lingerOnClose(reply.raw)
  }

  /**
   * A GET of a session whose node handed it off and is gone (its drain over, the GET too late
   * for its CLOSE): answered as that node would have, CLOSE 'server handoff' in the transport's
   * framing, since the session waits to be claimed. The client resumes with its quiet time, and
   * its resume claims the session; a 400 PARLEY_UNKNOWN_SESSION would fail its transport first.
   */
  function handedOff(kind: HttpKind, reply: FastifyReply, cors: HeaderBag): FastifyReply {
    const { type, body } = handedOffAnswer(kind)
    return answer(reply, 200, { ...cors, 'Cache-Control': 'no-store' }, type, body)
  }

  /** The CLOSE 'server handoff' a GET of a handed-off session gets (see `handedOff`), framed for `kind`. */
  function handedOffAnswer(kind: HttpKind): { type: string; body: string } {
    return closeAnswer(kind, forwarder.handedOffClose())
  }

  /**
   * A POST of a session whose node handed it off and is gone, as `handedOff` answers its GET: as
   * that node would have (see `UpstreamPosts.takeHandedOff`), 204 with nothing of the body used,
   * but a goodbye in it, which ends the session here (see `ParleyServer.handedOffGoodbye`), or,
   * this node closing, on a live node it sends the POST on to (see `goodbyeOfHandedOff`).
   * `read`: its body, read already when the owner was tried first.
   */
  async function handedOffPost(
    sid: string,
    kind: HttpKind,
    request: FastifyRequest,
    reply: FastifyReply,
    cors: HeaderBag,
    read: () => Promise<BodyResult>,
  ): Promise<FastifyReply> {
    const hear = (packets: readonly Packet[]) => {
      const transport = httpTransports[kind](options)
      // No client waits on it: the session is taken over detached, and ends at once.
      transport.close('normal')
      return server.handedOffGoodbye(sid, packets, transport, handshakeRequest(request))
    }
    const goodbye = (packets: readonly Packet[], text: string) =>
      goodbyeOfHandedOff(
        sid,
        packets,
        request,
        reply.raw,
        () => hear(packets),
        (other) => forwarder.handOver(other, request, reply, text, kind),
      )
    return send(reply, (await posts.takeHandedOff(cors, read, goodbye)).answer)
  }

  /**
   * The goodbye in `packets`, of a POST of a session whose node handed it off and is gone: heard
   * here (`hear`, see `ParleyServer.handedOffGoodbye`), or, when this node is closing, and claims
   * nothing any more, sent on (`sendOn`) to a live node (`Forwarder.goodbyeNode`, marked
   * `sent-on`), which hears it as its own (`handedOffPost` there) and answers the client. A node
   * it reaches that is closing too sends it on again, to a node it was not sent to yet, a few hops
   * at the most (see `SENT_TO_HEADER`). Without such a node it is lost, as nothing else would
   * claim the session for it: the session waits unclaimed for its recovery window.
   */
  async function goodbyeOfHandedOff(
    sid: string,
    packets: readonly Packet[],
    request: { headers: IncomingHttpHeaders },
    res: ServerResponse,
    hear: () => Promise<boolean>,
    sendOn: (other: Owner) => Promise<HandOver>,
  ): Promise<GoodbyeHeard> {
    if (!packets.some((packet) => packet.type === PacketType.CLOSE)) return 'none'
    if (await hear()) return 'heard'
    // A node that cannot be reached (one whose server closed takes no new connection, though it
    // stands in the live set until its close is over) is left out of the next pick.
    const unreached: string[] = []
    for (;;) {
      const other = await forwarder.goodbyeNode(sid, request, res, unreached)
      if (!other) return 'none'
      if ((await sendOn(other)) !== 'unreachable') return 'sent on'
      unreached.push(other.node)
    }
  }

  /**
   * 400 PARLEY_UNKNOWN_SESSION for a request that named `sid`, counted in `unknownSessionCount`
   * wherever it comes from: whoever watches that count sees every request answered so.
   */
  function unknownSession(reply: FastifyReply, sid: string, message: string, cors: HeaderBag): FastifyReply {
    server.unknownSession(sid)
    return fail(reply, 400, ErrorCode.UNKNOWN_SESSION, message, cors)
  }

  /** 400 PARLEY_TRANSPORT_MISMATCH: a request of a transport the session is not attached to. */
  function notAttached(reply: FastifyReply, kind: HttpKind, cors: HeaderBag): FastifyReply {
    return fail(reply, 400, ErrorCode.TRANSPORT_MISMATCH, notAttachedMessage(kind), cors)
  }

  /** See `UpstreamPosts.tooLarge`. */
  function refuseTooLarge(
    reply: FastifyReply,
    kind: HttpKind,
    cors: HeaderBag,
    session: Session | undefined,
    attached: boolean,
  ): FastifyReply {
    return send(reply, posts.tooLarge(kind, cors, session, attached, reply.request.headers['content-length']))
  }

  /**
   * The answer to a POST whose body passes `maxPayload`, for a session that `owner` holds: the
   * owner is told (see `Forwarder.tooLarge`) and answers as `refuseTooLarge` does there, so that
   * the session's fate does not depend on which node the POST reached. 413 here when there is
   * no owner to tell, or it cannot be reached.
   */
  async function refuseTooLargeFor(
    owner: Owner | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
    cors: HeaderBag,
  ): Promise<FastifyReply> {
    if (owner && (await forwarder.tooLarge(owner, request, reply)) !== 'unreachable') return reply
    return bodyNotRead(reply, 'too large', cors)
  }

  /** See `UpstreamPosts.notRead`. */
  function bodyNotRead(reply: FastifyReply, reason: BodyFailure, cors: HeaderBag): FastifyReply {
    return send(reply, posts.notRead(reason, cors))
  }

  /** A POST whose packets are not used: its body read to its end (within the limits), then 204. */
  async function takeUnused(
    request: FastifyRequest,
    reply: FastifyReply,
    cors: HeaderBag,
  ): Promise<FastifyReply> {
    const body = await readRequestBody(request, reply)
    if (!body.ok) return bodyNotRead(reply, body.reason, cors)
    return reply
      .code(204)
      .headers({ ...cors, 'Cache-Control': 'no-store' })
      .send()
  }

  /**
   * Sends `answer` (none: the client went), the connection closed after it when the body was
   * left unread (see `closeUnread`).
   */
  function send(reply: FastifyReply, answer: EndpointAnswer | undefined): FastifyReply {
    if (!answer) return reply
    if (answer.bodyUnread) closeUnread(reply)
    if (answer.body) return fail(reply, answer.status, answer.body.code, answer.body.message, answer.headers)
    // On the raw response when the owner was tried first and Fastify had given the reply up
    // (see `answer`, which `fail` goes through).
    if (reply.sent) {
      const res = reply.raw
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(answer.status, { ...answer.headers, 'cache-control': 'no-store' })
        res.end()
      }
      return reply
    }
    return reply
      .code(answer.status)
      .headers({ ...answer.headers, 'Cache-Control': 'no-store' })
      .send()
  }

  /**
   * `late`: for a POST of a session handed off (see `handedOffPost`), read once the server closed
   * too (its owner was looked up as it closed): its goodbye still goes on to a live node.
   */
  function readRequestBody(request: FastifyRequest, reply: FastifyReply, late = false) {
    const stream = bodyStream(request)
    return stream ? bodies.read(stream, reply.raw, late) : Promise.resolve(EMPTY_BODY)
  }

  function tooLarge(request: FastifyRequest): boolean {
    return bodyTooLarge(request.headers, options.maxPayload)
  }
}

const NOT_COMPLETED = 'the handshake did not complete: try again'

/** See `resumeGoesTo`. */
type ResumeGoesTo =
  | { handedOff: true; found: Owner | undefined }
  | { handedOff: false; found: Owner | HandedOff | undefined }

/** What Fastify takes for a media type: `type/subtype`, each a token, before any parameters. */
const MEDIA_TYPE = /^[\w!#$%&'*+.^`|~-]+\/[\w!#$%&'*+.^`|~-]+$/

/**
 * Bodies are read whatever their Content-Type (docs/protocol.md, HTTP bodies), but Fastify
 * refuses a request whose Content-Type does not parse as a media type (`''`, `;;;`, `a/b/c`)
 * with a 415 of its own, before any handler. Such a header is taken off the request, which then
 * reads as a body without a type. Called from the route's `onRequest`, before Fastify looks.
 */
function acceptAnyContentType(request: FastifyRequest): void {
  const type = request.headers['content-type']
  if (type === undefined) return
  const semicolon = type.indexOf(';')
  if (!MEDIA_TYPE.test((semicolon < 0 ? type : type.slice(0, semicolon)).trim())) {
    delete request.raw.headers['content-type']
  }
}

/** A body-less POST (no content type, length 0) never reaches the parser: it reads as ''. */
function bodyStream(request: FastifyRequest): Readable | undefined {
  const body = request.body as { pipe?: unknown } | undefined
  return body && typeof body.pipe === 'function' ? (body as Readable) : undefined
}
