import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import { pipeline } from 'node:stream'
import { CloseReason, ErrorCode, encodeText, type HelloPacket, PacketType } from '@parley/protocol'
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import type { Adapter, SessionOwnerAnswer } from '../adapter/adapter.js'
import { BurstLog } from '../burst-log.js'
import type { ClosingWebSockets } from '../transports/closing-websockets.js'
import type { HeaderBag } from '../transports/http.js'
import type { HttpTransportName } from '../transports/registry.js'
import type { ClosingForwards, EndingForward } from './closing-forwards.js'
import { answerHeaders, forwardedHeaders } from './forward-headers.js'
import { forwardWebSocket, type Relay, type UpgradeRefused } from './forward-ws.js'
import { answeredByFastify, outlastHandlerTimeout } from './handler-timeout.js'
import { codedError, readAnswer } from './owner-answers.js'
import { postGoodbye } from './relayed-goodbye.js'
import { RelayedStream } from './relayed-stream.js'
import {
  closingClient,
  GOODBYE,
  GOODBYE_ON,
  ROUTED_HEADER,
  type RoutedMark,
  relayResponse,
  routedRequest,
  SENT_ON,
  TOO_LARGE,
} from './routing.js'

/** The node that owns a session, as far as forwarding to it goes. */
export interface Owner {
  node: string
  /** Its base URL: requests go there over the network. Without one, `Adapter.routeRequest`. */
  url?: string
  /** A resume this draining node sends on to a live node (`anotherNode`), marked `SENT_ON`. */
  sentOn?: true
}

/**
 * What forwarding reads of the client's request: Fastify's, or one that reached the node while
 * Fastify refuses requests at close (see `Forwarder.postAtClose`).
 */
export interface ForwardedRequest {
  method: string
  /** The path and query string, as the client sent them. */
  url: string
  headers: IncomingHttpHeaders
  /** The client's address; undefined once it is gone. */
  ip: string | undefined
  protocol: 'http' | 'https'
  raw: IncomingMessage
}

/** A request on its way to the owner: the client's side of it, answered on `res`. */
interface Hop {
  request: ForwardedRequest
  res: ServerResponse
  /** The answer is this node's from here on (a Fastify reply is hijacked). */
  take(): void
  /** The CORS headers the endpoints give the request's page. */
  cors(): HeaderBag
  /** The endpoint's transport, for a GET this node answers itself when it closes (see `close`). */
  kind?: HttpTransportName
}

/**
 * What became of a request handed over: `answered` (the owner's answer went, or goes, to the
 * client), `gone` (the client went away first), or `unreachable` (nothing reached the owner and
 * nothing was sent to the client: the caller answers as for an unknown session).
 */
export type HandOver = 'answered' | 'gone' | 'unreachable'

/** A request on its way to an owner, or streaming from one, as `Forwarder.close` ends it. */
interface Forwarding extends EndingForward {
  /** Begins its end: CLOSE 'server handoff' for a stream or a held poll; the rest goes on. */
  end(): void
}

export interface ForwarderOptions {
  adapter: Adapter
  log: FastifyBaseLogger
  /**
   * The longest wait for the adapter to name a session's owner, then for a connection to that
   * owner (and for its WebSocket upgrade).
   */
  connectTimeout: number
  /** A relayed WebSocket stops reading a side whose peer holds more unsent bytes than this. */
  highWaterMark: number
  /** The server's maxPayload: what the owner sends a relay is bounded by it (see forward-ws.ts). */
  maxPayload: number
  /** Where a relay's side whose close frame went waits for its peer's (cut when the server closes). */
  closingWebSockets: ClosingWebSockets
  /** Where the forwarded requests end when this node closes (cut when the server closes). */
  closingForwards: ClosingForwards
  /**
   * The clients of the streams, held polls and WebSockets this node relays are told to resume
   * within this many ms when it closes (`handoff.retrySpread`): spread, as a drain spreads its own.
   */
  retrySpread: number
  /** Called when the owner could not be reached (counted and logged by the server). */
  unreachable(node: string, err: unknown): void
  /** Called when the adapter's `anotherNode` rejected (logged by the server, once per burst). */
  noOtherNode(err: unknown): void
  /** The CORS headers the endpoints give `request`'s page (see `checkOrigin`). */
  corsOf(request: FastifyRequest): HeaderBag
  /**
   * Where a relayed client's late goodbye goes on its owner (see relayed-goodbye.ts): the path
   * and query of an SSE or polling endpoint under this server's `path`, but the sid (the nodes of
   * a cluster share `path`, as every request sent on keeps its own).
   */
  goodbyePath: string
}

/**
 * Hands requests for sessions held by another node to that node, so that no sticky sessions
 * are needed: HTTP requests over `node:http` on one keep-alive agent, WebSockets as a relay of
 * messages both ways (see forward-ws.ts). The owner answers as if the client had come to it;
 * the routed mark keeps it from forwarding again.
 */
export class Forwarder {
  readonly #options: ForwarderOptions
  readonly #agent = new http.Agent({ keepAlive: true, scheduling: 'lifo' })
  /**
   * Requests on their way to, or streaming from, an owner (and the goodbyes sent on to one):
   * ended when this node closes (see `close`).
   */
  readonly #requests = new Map<http.ClientRequest, Forwarding>()
  readonly #relays = new Set<Relay>()
  /** Owner lookups the adapter failed (its store away): one line per burst, not one per request. */
  readonly #lookupsFailed: BurstLog
  #closed = false

  constructor(options: ForwarderOptions) {
    this.#options = options
    this.#lookupsFailed = new BurstLog(
      options.log,
      'warn',
      (count) =>
        `the adapter could not tell where a session lives, ${count} time(s) since the last such line; answered here (a resume is told to try again when the adapter cannot claim it either)`,
    )
  }

  /**
   * The node that holds session `sid`, when it is another one this node can hand `request` to
   * (over the network, or through the adapter for HTTP); undefined when the request is to be
   * answered here. A request forwarded once is always answered here: never a loop. But a relayed
   * goodbye (GOODBYE) that reached a node which no longer holds its session goes on once more,
   * to a node with a URL, marked GOODBYE_ON (which goes no further; see routing.ts). A resume
   * (`resume`) of a session its node is handing off is answered here too: this node claims it.
   */
  async ownerOf(
    sid: string,
    request: { headers: IncomingHttpHeaders },
    medium: 'http' | 'websocket',
    resume = false,
  ): Promise<Owner | undefined> {
    const adapter = this.#options.adapter
    const mark = request.headers[ROUTED_HEADER]
    if (this.#closed || !adapter.sessionOwner || (mark !== undefined && mark !== GOODBYE)) return undefined
    try {
      const owner = await this.#lookUp(adapter.sessionOwner.bind(adapter), sid)
      if (typeof owner !== 'object' || (resume && owner.handingOff)) return undefined
      if (typeof owner.url === 'string') return { node: owner.node, url: owner.url }
      // The adapter's routes carry no such mark: the goodbye would be taken for a plain POST.
      if (mark === GOODBYE) return undefined
      return medium === 'http' && adapter.routeRequest ? { node: owner.node } : undefined
    } catch (err) {
      this.#lookupsFailed.record({ err })
      return undefined
    }
  }

  /**
   * The adapter's answer to where `sid` lives, or a rejection once `connectTimeout` passed
   * without one: a lookup that never settles (a store that hangs, an adapter without a timeout
   * of its own) must not hold the request forever, nor keep it from Fastify's handlerTimeout
   * in vain (see handler-timeout.ts). It counts as a failed lookup.
   */
  async #lookUp(
    sessionOwner: (sid: string) => SessionOwnerAnswer | Promise<SessionOwnerAnswer>,
    sid: string,
  ): Promise<SessionOwnerAnswer> {
    // Asked before the timer is set: an adapter that throws at once leaves none behind.
    const asked = sessionOwner(sid)
    const ms = this.#options.connectTimeout
    let timer: NodeJS.Timeout | undefined
    try {
      return await Promise.race([
        asked,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`the adapter named no owner within ${ms} ms`)), ms)
        }),
      ])
    } finally {
      clearTimeout(timer)
    }
  }

  /**
   * A live node to hand a resume of `sid` to while this node drains (see `Adapter.anotherNode`), when
   * there is one this node can reach: with a URL, or (HTTP only) through the adapter. Never for
   * a request forwarded here already.
   */
  async anotherNode(
    sid: string,
    request: FastifyRequest,
    medium: 'http' | 'websocket',
  ): Promise<Owner | undefined> {
    const adapter = this.#options.adapter
    if (this.#closed || !adapter.anotherNode || request.headers[ROUTED_HEADER] !== undefined) return undefined
    try {
      const other = await adapter.anotherNode(sid)
      if (other === undefined) return undefined
      if (typeof other.url === 'string') return { node: other.node, url: other.url, sentOn: true }
      return medium === 'http' && adapter.routeRequest ? { node: other.node, sentOn: true } : undefined
    } catch (err) {
      this.#options.noOtherNode(err)
      return undefined
    }
  }

  /**
   * Hands an SSE or polling request (GET, POST, or a handshake POST that resumes) to the node
   * that owns its session, and streams that node's answer back: status, headers and body, for
   * as long as it lasts. `body`: the POST body, already read under maxPayload ('' for a GET);
   * `kind`: the endpoint's transport.
   */
  handOver(
    owner: Owner,
    request: FastifyRequest,
    reply: FastifyReply,
    body: string,
    kind: HttpTransportName,
  ): Promise<HandOver> {
    return this.#handOver(owner, request, reply, body, owner.sentOn ? SENT_ON : '1', kind)
  }

  /**
   * Tells the owner of a POST's session that the POST's body passes maxPayload: the POST goes
   * there without its body (nothing of it was read, or kept), marked TOO_LARGE, and the owner
   * answers as for such a POST of its own (413, the session ended or left alone, or stale). The
   * client gets that answer, then its connection closes: the rest of its body may still be on
   * its way, and is not read.
   */
  tooLarge(owner: Owner, request: FastifyRequest, reply: FastifyReply): Promise<HandOver> {
    return this.#handOver(owner, request, reply, '', TOO_LARGE)
  }

  #handOver(
    owner: Owner,
    request: FastifyRequest,
    reply: FastifyReply,
    body: string,
    mark: RoutedMark,
    kind?: HttpTransportName,
  ): Promise<HandOver> {
    // Answered already, by Fastify: the application's handlerTimeout ran out while a POST's
    // body came. Its packets go again with the client's next POST.
    if (answeredByFastify(reply)) return Promise.resolve('gone')
    const hop: Hop = {
      request,
      res: reply.raw,
      take: () => takeReply(reply),
      cors: () => this.#options.corsOf(request),
      kind,
    }
    // The owner may hold this request (or stream it) far longer than the application's
    // handlerTimeout, which counts on the owner alone (it answers there). The reply stays
    // Fastify's until the owner answers, so that an owner that cannot be reached is answered
    // as any other error (the application's onSend hooks and all), unless the handlerTimeout
    // ran out meanwhile: then it is this node's, answered on the raw response.
    return outlastHandlerTimeout(reply, this.#deliver(owner, hop, body, mark))
  }

  /**
   * Hands a POST of a session `owner` holds to it, as `handOver` does, for a request that reached
   * this node while Fastify refuses requests at close (see last-words.ts), which no route of
   * Parley's can take then: `req` and `res` are Node's. `cors`: the page's headers. The client's
   * connection closes after the owner's answer, as after every answer at close.
   */
  postAtClose(
    owner: Owner,
    req: IncomingMessage,
    res: ServerResponse,
    body: string,
    cors: HeaderBag,
  ): Promise<HandOver> {
    const request: ForwardedRequest = {
      method: req.method ?? 'POST',
      url: req.url ?? '',
      headers: req.headers,
      ip: req.socket.remoteAddress,
      protocol: 'encrypted' in req.socket && req.socket.encrypted ? 'https' : 'http',
      raw: req,
    }
    return this.#deliver(owner, { request, res, take: () => {}, cors: () => cors }, body, TO_CLOSE)
  }

  async #deliver(
    owner: Owner,
    hop: Hop,
    body: string,
    mark: RoutedMark | typeof TO_CLOSE,
  ): Promise<HandOver> {
    if (owner.url === undefined) return this.#route(owner, hop, body, mark)
    let outcome = await this.#send(owner.url, hop, body, mark)
    // A kept-alive connection the owner had closed meanwhile: once more on a new one. A POST
    // sent twice is harmless, since the owner drops packets it already has (by `seq`).
    if (outcome === 'stale') outcome = await this.#send(owner.url, hop, body, mark)
    // Closed while the request was on its way here (its owner looked up, its body read), or
    // before its second try: nothing goes to the owner any more. The client is told to try
    // again, where a cut connection would fail its transport and have it resume at once, with
    // no quiet time.
    if (outcome === 'closed') {
      hop.take()
      tryAgain(hop, 'this node is closing: try again through another node', true)
      return 'answered'
    }
    if (outcome === 'stale' || outcome instanceof Error) {
      this.#options.unreachable(owner.node, outcome === 'stale' ? new Error('connection reset') : outcome)
      return 'unreachable'
    }
    // Nobody to answer (the client left): let its connection go.
    if (outcome === 'gone') {
      hop.take()
      hop.res.destroy()
    }
    return outcome
  }

  /**
   * Hands a WebSocket whose HELLO resumes a session of another node to that node: connects
   * there (within the connect timeout), sends it the HELLO, then relays every message both ways
   * until either side closes. Resolves once that is settled; on `unreachable` the WebSocket is
   * untouched and the caller handles the HELLO itself; when the owner refused the upgrade with a
   * status, with what the client is told instead (see `UpgradeRefused`), the WebSocket untouched
   * too. `relayed` hears when the relay began, with a promise of the HELLO's answer passed on
   * (see `Relay.answered`).
   */
  async handOverWebSocket(
    owner: Owner,
    ws: WebSocket,
    hello: HelloPacket,
    request: FastifyRequest,
    take: () => WebSocket,
    relayed?: (answered: Promise<void>) => void,
  ): Promise<HandOver | UpgradeRefused> {
    if (this.#closed || owner.url === undefined) return 'unreachable'
    const { connectTimeout, highWaterMark, maxPayload, closingWebSockets } = this.#options
    // Named here: the closure below keeps them as they are now.
    const url = owner.url
    const sid = hello.sid
    const result = await forwardWebSocket({
      ws,
      take,
      url: `${owner.url.replace(/^http/, 'ws')}${request.url}`,
      headers: forwardedHeaders(request, true, owner.sentOn ? SENT_ON : '1'),
      hello,
      connectTimeout,
      highWaterMark,
      maxPayload,
      closing: closingWebSockets,
      ...(sid !== undefined && { lateGoodbye: (text: string) => this.#goodbye(url, sid, request, text) }),
    })
    if (result instanceof Error) {
      this.#options.unreachable(owner.node, result)
      return 'unreachable'
    }
    if (result === 'gone' || 'refused' in result) return result
    if (this.#closed) {
      result.close(this.#handoff())
      return 'answered'
    }
    this.#relays.add(result)
    void result.closed.then(() => this.#relays.delete(result))
    relayed?.(result.answered)
    return 'answered'
  }

  /**
   * Ends every forwarded request and relay as a drain ends a session's transport, since their
   * sessions live on, on their owners: an event stream, a held poll or a relayed WebSocket gets
   * CLOSE 'server handoff' (see `#handoff`), and its client resumes elsewhere, telling its
   * application nothing. What is under way otherwise (a POST, an answer) goes on to its end.
   * `closingForwards` waits for them, then cuts those still going; the agent's connections go
   * once they are over. Logs what is left of a burst of failed lookups.
   */
  close(): void {
    // Once: the server closes again at Fastify's onClose, and the agent must outlive what ends.
    if (this.#closed) return
    this.#closed = true
    this.#lookupsFailed.close()
    const ending = [...this.#requests.values()]
    this.#requests.clear()
    for (const forward of ending) {
      forward.end()
      this.#options.closingForwards.add(forward)
    }
    for (const relay of this.#relays) relay.close(this.#handoff())
    this.#relays.clear()
    void Promise.all(ending.map((forward) => forward.closed)).then(() => this.#agent.destroy())
  }

  /**
   * The CLOSE 'server handoff' for the client of a request or a WebSocket this node relays to its
   * session's node, when this node closes: its session lives on there, and is resumed through
   * another node after `retryAfter`, drawn for each client within `retrySpread`. As for a drained
   * session, the client keeps quiet while its first tries fail (the balancer may still send them
   * here), where a cut would have it tell its application the session is down.
   */
  #handoff(): string {
    return encodeText({
      type: PacketType.CLOSE,
      reason: CloseReason.SERVER_HANDOFF,
      message: 'the node relaying this session is closing: resume it through another node',
      retryAfter: Math.floor(Math.random() * (this.#options.retrySpread + 1)),
    })
  }

  /**
   * A relayed client's goodbye that came once the owner's side of its relay was closing: sent to
   * the owner `base` (its URL) as an upstream POST of session `sid` (see relayed-goodbye.ts).
   */
  #goodbye(base: string, sid: string, request: FastifyRequest, text: string): void {
    if (this.#closed) return
    const post = postGoodbye({
      url: new URL(`${this.#options.goodbyePath}&sid=${encodeURIComponent(sid)}`, base),
      headers: forwardedHeaders(request, true, GOODBYE),
      text,
      agent: this.#agent,
      timeoutMs: this.#options.connectTimeout,
      failed: (err) =>
        this.#options.log.debug({ err }, "parley: a relayed client's goodbye did not reach its node"),
    })
    // Goes on to its end when this node closes: it is the client's last word.
    this.#requests.set(post, { closed: closeOf(post), end() {}, cut: () => post.destroy() })
    post.once('close', () => this.#requests.delete(post))
  }

  /** Through the adapter, for in-process adapters whose owners have no URL. */
  async #route(owner: Owner, hop: Hop, body: string, mark: RoutedMark | typeof TO_CLOSE): Promise<HandOver> {
    const node = owner.node
    try {
      const routed = routedRequest(hop.request, body, markOf(mark))
      const response = await this.#options.adapter.routeRequest?.(node, routed)
      if (!response) throw new Error('the adapter cannot route requests')
      hop.take()
      // The client left meanwhile: the owner sees its request closed, as in `#send`.
      if (hop.res.destroyed) {
        response.abort()
        return 'gone'
      }
      relayResponse(hop.request, hop.res, response, closes(mark))
      return 'answered'
    } catch (err) {
      this.#options.unreachable(node, err)
      return 'unreachable'
    }
  }

  /**
   * The owner's error answer (`status` 400 or more) for the client: as it is when it carries a
   * code (Parley's, or an application hook's), else `503 PARLEY_SERVER_SHUTTING_DOWN` with the
   * page's CORS headers, a try again that names the status. An uncoded one comes from before
   * the owner's routes (its headers past Node's 16 KiB once this node added its own: 431;
   * Fastify's bare 503 while it closes; a proxy's), and would tell the client nothing it can
   * act on, nor reach a page on another origin at all (it has no CORS headers). The client's
   * next try may reach the owner directly, as a relayed WebSocket's does (see forward-ws.ts).
   */
  #errorAnswer(
    { request, res, cors }: Hop,
    upstream: http.ClientRequest,
    answer: http.IncomingMessage,
    status: number,
    mark: RoutedMark | typeof TO_CLOSE,
  ): void {
    readAnswer(answer, (body, whole) => {
      // Read to its end, the connection to the owner goes back to the agent; else it goes.
      if (!whole) upstream.destroy()
      if (res.destroyed) return
      const coded = whole ? codedError(body) : undefined
      if (coded) {
        const headers = closingClient(request, answerHeaders(answer.headers), closes(mark))
        res.writeHead(status, headers)
        res.end(body)
        return
      }
      tryAgain(
        { request, res, cors },
        `the node of this session answered the forwarded request with HTTP ${status}: try again`,
        closes(mark),
      )
    })
  }

  /**
   * One attempt. `stale`: a reused keep-alive connection failed before any answer (try again);
   * an Error: the owner could not be reached; `closed`: this node's forwarder closed, and sends
   * nothing more; nothing went to the client in any of these cases.
   */
  #send(
    base: string,
    hop: Hop,
    body: string,
    mark: RoutedMark | typeof TO_CLOSE,
  ): Promise<'answered' | 'gone' | 'stale' | 'closed' | Error> {
    const { request, res, kind } = hop
    if (res.destroyed) return Promise.resolve('gone')
    if (this.#closed) return Promise.resolve('closed')
    const target = new URL(base)
    const headers = forwardedHeaders(request, false, onward(request, markOf(mark)))
    if (request.method === 'POST') headers['content-length'] = String(Buffer.byteLength(body))
    return new Promise((resolve) => {
      const upstream = http.request({
        protocol: target.protocol,
        hostname: target.hostname.replace(/^\[|\]$/g, ''),
        port: target.port,
        method: request.method,
        path: request.url,
        headers,
        agent: this.#agent,
      })
      upstream.setNoDelay(true)
      let answered = false
      let stream: RelayedStream | undefined
      this.#requests.set(upstream, {
        closed: Promise.all([closeOf(upstream), closeOf(res)]).then(() => {}),
        end: () => {
          if (stream) stream.end(this.#handoff())
          // A held poll, or a stream the owner has yet to answer: the client is told here.
          else if (!answered && kind && request.method === 'GET' && !res.headersSent) {
            answered = true
            hop.take()
            resolve('answered')
            handoffAnswer(res, kind, hop.cors(), this.#handoff())
            upstream.destroy()
          }
        },
        cut: () => {
          upstream.destroy()
          res.destroy()
        },
      })
      let timer: NodeJS.Timeout | undefined
      // The client went away: the owner sees its request closed (an SSE stream detaches, a
      // held poll is let go), as if that client had hung up on it directly. So too when the
      // client got another answer before the owner's (see below).
      const onClientGone = () => {
        if (!answered || !res.writableFinished) upstream.destroy()
      }
      res.once('close', onClientGone)
      upstream.once('close', () => {
        clearTimeout(timer)
        this.#requests.delete(upstream)
        res.off('close', onClientGone)
        if (!answered) resolve('gone')
      })
      // Bounded while connecting; once connected, an answer may take its time (a held poll).
      upstream.once('socket', (socket) => {
        if (!socket.connecting) return
        timer = setTimeout(
          () => upstream.destroy(new Error(`no connection within ${this.#options.connectTimeout} ms`)),
          this.#options.connectTimeout,
        )
        socket.once('connect', () => clearTimeout(timer))
      })
      upstream.once('response', (answer) => {
        answered = true
        hop.take()
        resolve('answered')
        const status = answer.statusCode ?? 502
        if (status >= 400) {
          this.#errorAnswer(hop, upstream, answer, status, mark)
          return
        }
        const headers = closingClient(request, answerHeaders(answer.headers), closes(mark))
        res.writeHead(status, headers)
        // An SSE stream streams: each chunk the owner writes goes on at once.
        res.flushHeaders()
        if (request.method === 'GET' && isEventStream(answer.headers['content-type'])) {
          stream = new RelayedStream(answer, res, () => {
            upstream.destroy()
            res.destroy()
          })
          return
        }
        pipeline(answer, res, (err) => {
          // The owner broke off (or the client did): cut the other side, as a direct
          // connection to the owner would have been cut.
          if (err) {
            upstream.destroy()
            res.destroy()
          }
        })
      })
      // Not once: a socket may report more than one error, and none may go unhandled.
      upstream.on('error', (err: Error & { code?: string }) => {
        if (answered) return
        answered = true
        if (res.destroyed) resolve('gone')
        else if (upstream.reusedSocket && err.code === 'ECONNRESET') resolve('stale')
        else resolve(err)
      })
      upstream.end(request.method === 'POST' ? body : undefined)
    })
  }
}

/**
 * `503 PARLEY_SERVER_SHUTTING_DOWN` with the page's CORS headers and `message`: the client tries
 * again, through the balancer. `close`: its connection closes after the answer.
 */
function tryAgain(
  { request, res, cors }: Pick<Hop, 'request' | 'res' | 'cors'>,
  message: string,
  close: boolean,
): void {
  const text = JSON.stringify({ code: ErrorCode.SERVER_SHUTTING_DOWN, message })
  const headers = closingClient(
    request,
    {
      ...cors(),
      'cache-control': 'no-store',
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(Buffer.byteLength(text)),
    } as Record<string, string>,
    close,
  )
  res.writeHead(503, headers)
  res.end(text)
}

/** True for the content type of an event stream (`text/event-stream`, any case, any parameters). */
function isEventStream(type: string | undefined): boolean {
  return type !== undefined && /^text\/event-stream\s*(;|$)/i.test(type)
}

/**
 * The answer a closing node gives a GET it forwarded that the owner has not answered yet (a
 * held poll; a stream, in the moment before its owner answers it): `close` alone, as the stream's
 * one event or the poll's one line, as the owner would have sent a CLOSE of its own.
 */
function handoffAnswer(
  res: http.ServerResponse,
  kind: HttpTransportName,
  cors: HeaderBag,
  close: string,
): void {
  const body = kind === 'sse' ? `data: ${close}\n\n` : close
  res.writeHead(200, {
    ...cors,
    'cache-control': 'no-store',
    'content-type': kind === 'sse' ? 'text/event-stream; charset=utf-8' : 'text/plain; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    connection: 'close',
  })
  res.end(body)
}

/** Settles once `emitter` has closed (at once when it has). */
function closeOf(emitter: http.ClientRequest | http.ServerResponse): Promise<void> {
  if (emitter.closed) return Promise.resolve()
  return new Promise((resolve) => emitter.once('close', () => resolve()))
}

/**
 * A POST sent on from a node that is closing (see `Forwarder.postAtClose`): routed with the
 * plain mark, and its client's connection closed after the answer, as after every answer at
 * close.
 */
const TO_CLOSE = 'to-close'

/** The routed mark a request goes with. */
function markOf(mark: RoutedMark | typeof TO_CLOSE): RoutedMark {
  return mark === TO_CLOSE ? '1' : mark
}

/**
 * `mark`, but GOODBYE_ON for a relayed goodbye sent on (see `Forwarder.ownerOf`); one whose body
 * passed maxPayload keeps TOO_LARGE, answered as any such POST.
 */
function onward(request: ForwardedRequest, mark: RoutedMark): RoutedMark {
  return mark === '1' && request.headers[ROUTED_HEADER] === GOODBYE ? GOODBYE_ON : mark
}

/**
 * Whether the client's connection closes after the owner's answer whatever the owner says: at
 * close, and after a POST whose body was left unread (TOO_LARGE, see `Forwarder.tooLarge`).
 */
function closes(mark: RoutedMark | typeof TO_CLOSE): boolean {
  return mark === TO_CLOSE || mark === TOO_LARGE
}

/**
 * The reply, hijacked (unless it was already): from here this node answers on the raw response,
 * as it does a poll it holds.
 */
function takeReply(reply: FastifyReply): FastifyReply {
  if (!reply.sent) reply.hijack()
  return reply
}
