import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import type { HelloPacket } from '@parley/protocol'
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import type { Adapter } from '../adapter/adapter.js'
import type { CertificateAuthority } from '../options.js'
import type { ClosingWebSockets } from '../transports/closing-websockets.js'
import type { HeaderBag } from '../transports/http.js'
import type { HttpTransportName } from '../transports/registry.js'
import { type ClosingForwards, closeOf } from './closing-forwards.js'
import { closingEndsConnection } from './connection-close.js'
import type { AddressOf } from './fastify-closing.js'
import { type HandOver, type Hop, HttpForwards } from './forward-http.js'
import type { UpgradeRefused } from './forward-ws.js'
import { type ForwardedRequest, rawForwardedRequest } from './forwarded-request.js'
import { answeredByFastify, outlastHandlerTimeout } from './handler-timeout.js'
import { handedOffClose, relayHandoffClose } from './handoff-close.js'
import { NodeAgents } from './node-agents.js'
import { type HandedOff, isHandedOff, type Owner, OwnerLookup } from './owner-lookup.js'
import { RecentlyUnreachable, waitRanOut } from './recently-unreachable.js'
import { type RoutedMark, SENT_ON, TOO_LARGE } from './routing.js'
import { WebSocketHandovers } from './websocket-handover.js'

export type { HandOver } from './forward-http.js'
export type { Owner } from './owner-lookup.js'
export { type HandedOff, isHandedOff } from './owner-lookup.js'

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
  /** The address of a request's client that no route took, as Fastify's `request.ip` gives it. */
  addressOf: AddressOf
  /** Called when the owner could not be reached (counted and logged by the server). */
  unreachable(node: string, err: unknown): void
  /**
   * Called when the live node picked for a goodbye sent on (see `goodbyeNode`) could not be
   * reached, or refused it (logged by the server): no owner of its session.
   */
  goodbyeUnsent(node: string, err: unknown): void
  /** Called when the adapter's `anotherNode` rejected (logged by the server, once per burst). */
  noOtherNode(err: unknown): void
  /** The CORS headers the endpoints give `request`'s page (see `checkOrigin`). */
  corsOf(request: FastifyRequest): HeaderBag
  /**
   * Where a relayed client's late goodbye goes on its owner (see relayed-goodbye.ts): the path
   * segment of an SSE or polling endpoint (`goodbyeEndpoint`), in place of the WebSocket one in
   * the path its client's upgrade came by.
   */
  goodbyeEndpoint: string
  /** The `forwarding` option's `ca`: trusted for `https://` node addresses (see node-agents.ts). */
  ca: CertificateAuthority | undefined
}

/**
 * Hands requests for sessions held by another node to that node, so that no sticky sessions
 * are needed: the owner is looked up (owner-lookup.ts), HTTP requests go over `node:http` or
 * `node:https` on keep-alive agents (forward-http.ts, node-agents.ts), WebSockets as a relay of messages both ways
 * (websocket-handover.ts, forward-ws.ts). The owner answers as if the client had come to it;
 * the routed mark keeps it from forwarding again. When this node closes, what it relays ends
 * with CLOSE 'server handoff' (handoff-close.ts), and nothing more is sent on.
 */
export class Forwarder {
  readonly #options: ForwarderOptions
  readonly #lookup: OwnerLookup
  readonly #http: HttpForwards
  readonly #websockets: WebSocketHandovers
  /** Owners not reached lately: their sessions' requests are answered here at once. */
  readonly #recentlyUnreachable = new RecentlyUnreachable()
  /**
   * The SSE and polling requests whose owner was looked up (see `ownerOf`), by the response they
   * are answered on, until it closes: those still under way when this node closes are waited for
   * (see `ClosingForwards.lookingUp`). A WebSocket's HELLO is its handshake's to answer at close,
   * its lookup too (see `WebSocketHandshakes`).
   */
  readonly #answering = new Map<ServerResponse, Promise<unknown>>()
  #closed = false

  constructor(options: ForwarderOptions) {
    this.#options = options
    const { adapter, log, connectTimeout } = options
    const remember = (node: string, err: unknown, url?: string) => {
      if (url !== undefined && waitRanOut(err)) this.#recentlyUnreachable.add(node, url)
    }
    const unreachable = (node: string, err: unknown, url?: string) => {
      remember(node, err, url)
      options.unreachable(node, err)
    }
    const goodbyeUnsent = (node: string, err: unknown, url?: string) => {
      remember(node, err, url)
      options.goodbyeUnsent(node, err)
    }
    this.#lookup = new OwnerLookup({ adapter, log, connectTimeout, noOtherNode: options.noOtherNode })
    const agents = new NodeAgents(options.ca)
    this.#http = new HttpForwards({
      adapter,
      log,
      connectTimeout,
      closingForwards: options.closingForwards,
      handoff: () => this.relayClose(),
      unreachable,
      goodbyeUnsent,
      goodbyeEndpoint: options.goodbyeEndpoint,
      agents,
    })
    this.#websockets = new WebSocketHandovers({
      connectTimeout,
      tls: agents.tls,
      highWaterMark: options.highWaterMark,
      maxPayload: options.maxPayload,
      closingWebSockets: options.closingWebSockets,
      unreachable,
      goodbye: (base, sid, request, text) => this.#http.goodbye(base, sid, request, text),
    })
  }

  /**
   * The node that holds session `sid`, when it is another one this node can hand `request` to
   * (over the network, or through the adapter for HTTP); undefined when the request is to be
   * answered here. A request forwarded once is always answered here: never a loop. But a relayed
   * goodbye (GOODBYE) that reached a node which no longer holds its session goes on once more,
   * to a node with a URL, marked GOODBYE_ON (which goes no further; see routing.ts). So is a
   * request for a node whose connection at that URL timed out less than `UNREACHABLE_KEPT_MS`
   * ago (recently-unreachable.ts), counted as unreachable: answered at once, as after the wait.
   * A `HandedOff` instead of undefined when that node handed the session off (see `HandedOff`).
   * `on`: the response an SSE or polling request is answered on (see `#answered`). `params`: the
   * request's route parameters (see `OwnerLookup.ownerOf`).
   */
  ownerOf(
    sid: string,
    request: { headers: IncomingHttpHeaders },
    medium: 'http' | 'websocket',
    on?: ServerResponse,
    params?: Readonly<Record<string, string>>,
  ): Promise<Owner | HandedOff | undefined> {
    return this.#answered(on, this.#ownerOf(sid, request, medium, false, params))
  }

  /**
   * `ownerOf` for a resume (HELLO) of `sid`: `HandedOff` when the session's node is handing it
   * off, for this node to claim it (the handshake then knows that a claim which finds nothing
   * lost to another node's: see `ParleyServer.handshake`). Over WebSocket an owner not reached
   * lately is named all the same: the handshake asks it for the session through the adapter
   * first (`requestHandOff`), and only its relay is refused at once. `params`: the resume's
   * route parameters, when known (see `ownerOf`): a session under others is none of its.
   */
  resumeOwner(
    sid: string,
    request: { headers: IncomingHttpHeaders },
    medium: 'http' | 'websocket',
    on?: ServerResponse,
    params?: Readonly<Record<string, string>>,
  ): Promise<Owner | HandedOff | undefined> {
    return this.#answered(on, this.#ownerOf(sid, request, medium, true, params))
  }

  /**
   * `lookup` is for the SSE or polling request answered on `on`: should this node close before
   * that request is answered, its close waits for the lookup and the answer that follows (see
   * `close`). Over once `on` closes.
   */
  #answered<T>(on: ServerResponse | undefined, lookup: Promise<T>): Promise<T> {
    if (!on) return lookup
    if (!this.#answering.has(on)) void closeOf(on).then(() => this.#answering.delete(on))
    this.#answering.set(on, lookup)
    return lookup
  }

  /**
   * After `owner`, which `resumeOwner` found for a resume of `sid`, could not be reached: true
   * when the session has left it since (its owner record names another node now, or says it is
   * handed off), false when the record still names `owner` (a node that died: the resume gets a
   * new session, as it always did) or nothing. `on`: as for `ownerOf`.
   */
  async movedSince(
    owner: Owner,
    sid: string,
    request: { headers: IncomingHttpHeaders },
    medium: 'http' | 'websocket',
    on?: ServerResponse,
  ): Promise<boolean> {
    if (this.#closed) return false
    // Asked of the adapter itself: `owner` may be among the recently unreachable now, and this
    // look is no second try at it (nor counted as one).
    const now = await this.#answered(on, this.#lookup.ownerOf(sid, request, medium, true))
    return isHandedOff(now) || (now !== undefined && now.node !== owner.node)
  }

  async #ownerOf(
    sid: string,
    request: { headers: IncomingHttpHeaders },
    medium: 'http' | 'websocket',
    resume: boolean,
    params?: Readonly<Record<string, string>>,
  ): Promise<Owner | HandedOff | undefined> {
    if (this.#closed) return undefined
    const owner = await this.#lookup.ownerOf(sid, request, medium, resume, params)
    // A WebSocket resume first asks the owner to hand the session over, through the adapter,
    // which may reach a node its URL does not (see websocket-handshake.ts): only its relay is
    // answered at once (see `handOverWebSocket`).
    if (resume && medium === 'websocket') return owner
    // Not reached moments ago: answered here at once, as it would be after the wait.
    if (
      owner !== undefined &&
      !isHandedOff(owner) &&
      owner.url !== undefined &&
      this.#unreachableLately(owner.node, owner.url)
    )
      return owner.handingOff ? { handedOffBy: owner.node } : undefined
    return owner
  }

  /** True, and counted as unreachable, for a node not reached at `url` moments ago. */
  #unreachableLately(node: string, url: string): boolean {
    if (!this.#recentlyUnreachable.has(node, url)) return false
    this.#options.unreachable(node, new Error(`${url} could not be reached moments ago`))
    return true
  }

  /**
   * A live node to hand a resume of `sid` to while this node drains (see `Adapter.anotherNode`), when
   * there is one this node can reach: with a URL, or (HTTP only) through the adapter. Never for
   * a request forwarded here already.
   */
  anotherNode(
    sid: string,
    request: { headers: IncomingHttpHeaders },
    medium: 'http' | 'websocket',
    on?: ServerResponse,
  ): Promise<Owner | undefined> {
    if (this.#closed) return Promise.resolve(undefined)
    return this.#answered(on, this.#lookup.anotherNode(sid, request, medium))
  }

  /**
   * A live node to send on the goodbye of a session handed off by a node that is gone, which this
   * closing node cannot claim the session for (see `goodbyeOfHandedOff` in routes.ts): the
   * request came from its client, or was sent on here by another closing node (marked SENT_ON),
   * and goes to a node it was not sent on to yet (see `SENT_TO_HEADER`), within
   * `MAX_GOODBYE_HOPS`, and none of `unreached` (nodes this one could not reach with it, which
   * count as hops too). `on`: as for `ownerOf`. Also once this node closed, for a request that
   * was still looking its owner up then, which the close waits for (see `close`): its goodbye is
   * the client's last word, and no other node would hear it.
   */
  goodbyeNode(
    sid: string,
    request: { headers: IncomingHttpHeaders },
    on?: ServerResponse,
    unreached: readonly string[] = [],
  ): Promise<Owner | undefined> {
    return this.#answered(on, this.#lookup.goodbyeNode(sid, request, unreached))
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
    return outlastHandlerTimeout(reply, this.#http.deliver(owner, hop, body, mark))
  }

  /**
   * Hands a POST or a GET of a session `owner` holds to it, or a resume to the node that is to
   * claim it, as `handOver` does, for a request that reached this node while Fastify refuses
   * requests at close (see last-words.ts), which no route of Parley's can take then: `req` and
   * `res` are Node's. `cors`: the page's headers; `kind`: the endpoint's transport. The client's
   * connection closes after the owner's answer, as after every answer at close (but one a
   * successor at the path serves next, see `closingConnection`); a stream or a
   * held poll relayed so ends with CLOSE 'server handoff' when the forwarder closes, as any
   * other (see `close`).
   */
  atClose(
    owner: Owner,
    req: IncomingMessage,
    res: ServerResponse,
    body: string,
    { cors, kind }: { cors: HeaderBag; kind: HttpTransportName },
  ): Promise<HandOver> {
    const request = rawForwardedRequest(req, this.#options.addressOf(req))
    const hop: Hop = {
      request,
      res,
      take: () => {},
      cors: () => cors,
      kind,
      ...(closingEndsConnection(req) && { closes: true as const }),
    }
    return this.#http.deliver(owner, hop, body, owner.sentOn ? SENT_ON : '1')
  }

  /**
   * Hands a WebSocket whose HELLO resumes a session of another node to that node: connects
   * there (within the connect timeout), sends it the HELLO, then relays every message both ways
   * until either side closes. Resolves once that is settled; on `unreachable` (at once for an
   * owner not reached at its URL moments ago, see `ownerOf`) the WebSocket is untouched and the
   * caller handles the HELLO itself; when the owner refused the upgrade with a status, with what
   * the client is told instead (see `UpgradeRefused`), the WebSocket untouched too. `relayed`
   * hears when the relay began, with a promise of the HELLO's answer passed on (see
   * `Relay.answered`).
   */
  async handOverWebSocket(
    owner: Owner,
    ws: WebSocket,
    hello: HelloPacket,
    request: ForwardedRequest,
    take: () => WebSocket,
    relayed?: (answered: Promise<void>) => void,
  ): Promise<HandOver | UpgradeRefused> {
    const url = owner.url
    if (this.#closed || url === undefined || this.#unreachableLately(owner.node, url)) return 'unreachable'
    return this.#websockets.handOver({ ...owner, url }, ws, hello, request, take, relayed)
  }

  /**
   * Ends every forwarded request and relay as a drain ends a session's transport, since their
   * sessions live on, on their owners: an event stream, a held poll or a relayed WebSocket gets
   * CLOSE 'server handoff' (see handoff-close.ts), and its client resumes elsewhere, telling its
   * application nothing. What is under way otherwise (a POST, an answer) goes on to its end.
   * `closingForwards` waits for them, then cuts those still going; the agent's connections go
   * once they are over. So too for an SSE or polling request whose owner is still being looked
   * up: after its lookup (which bounds itself), it is answered here as any request this node can
   * no longer send on (see `HttpForwards`), where the server's close would cut it and fail its
   * client's transport. (A WebSocket's HELLO so caught is its handshake's, see
   * `WebSocketHandshakes`; a relay's end, below, the relay's.) Logs what is left of a burst of
   * failed lookups.
   */
  close(): void {
    // Once: the server closes again at Fastify's onClose, and the agent must outlive what ends.
    if (this.#closed) return
    this.#closed = true
    this.#lookup.close()
    const { closingForwards, connectTimeout } = this.#options
    // A request on its way to its owner, or answered from there, is left to its forward's own
    // end (which tells a POST its owner has not answered to try again, where this would cut it).
    for (const [res, lookup] of this.#answering)
      if (!this.#http.sending(res)) closingForwards.lookingUp(res, lookup, connectTimeout)
    this.#answering.clear()
    this.#http.end()
    // A goodbye that crossed a relay's CLOSE 'server handoff' comes before its client's close
    // frame: sent to the owner then (see `HttpForwards.goodbye`), and waited for as any forward.
    closingForwards.waitFor(
      this.#websockets.close(() => this.relayClose()),
      connectTimeout,
    )
  }

  /** See `handedOffClose`. */
  handedOffClose(): string {
    return handedOffClose(this.#options.retrySpread)
  }

  /**
   * See `relayHandoffClose`: what ends a request or WebSocket relayed to its session's node when
   * this node closes, or one it can no longer send on (its owner looked up as it closed).
   */
  relayClose(): string {
    return relayHandoffClose(this.#options.retrySpread)
  }
}

/**
 * The reply, hijacked (unless it was already): from here this node answers on the raw response,
 * as it does a poll it holds.
 */
function takeReply(reply: FastifyReply): FastifyReply {
  if (!reply.sent) reply.hijack()
  return reply
}
