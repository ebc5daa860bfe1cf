import type { IncomingHttpHeaders } from 'node:http'
import { ErrorCode, PROTOCOL_VERSION, type TransportName } from '@parley/protocol'
import { type RouteParams, sameParams } from '../route-params.js'
import { SHUTTING_DOWN } from '../shutting-down.js'
import type { HeaderBag } from '../transports/http.js'
import { type HttpTransportName, httpSegments } from '../transports/registry.js'
import { forbiddenMessage, type OriginVerdict, preflightHeaders } from './origin.js'
import { DEFAULT_READING, originForm, queryStart, type RouterReading, routedPath } from './request-target.js'
import { type RouteMatch, routeMatch } from './route-match.js'
import { type UpgradeSettings, upgradeRefusal, versionAsText } from './upgrade-refusal.js'
import { type VersionRefusal, versionRefusal } from './version-refusals.js'

/** What a request to the endpoints is judged by: its line and headers, nothing of its body. */
export interface EndpointRequest {
  method?: string | undefined
  url?: string | undefined
  headers: IncomingHttpHeaders
}

/** An answer as the endpoints give it: a coded JSON body, or none (a preflight's 204). */
export interface EndpointAnswer {
  status: number
  headers: HeaderBag
  body?: { code: string; message: string }
  /** A refusal of the page's origin: counted in the log of refused origins when it is sent. */
  refusedOrigin?: OriginVerdict
  /** A refusal of another protocol version: counted in the log of those when it is sent. */
  refusedVersion?: VersionRefusal
  /**
   * Sent before the request's body was read (a 413): the connection lingers after it, as the
   * routes' does (see lingering-close.ts), so that a client still sending reads the answer.
   */
  bodyUnread?: true
  /**
   * The sid of the live session whose transport sent this POST past `maxPayload`: it ends with
   * 'payload too large' as the answer is sent, as the route ends it (`refuseTooLarge` in
   * routes.ts). Not at `judge`, which also weighs requests it then leaves to the routes.
   */
  endsSession?: string
}

/**
 * What the endpoints answer a request with once they no longer serve it: `answer`; or, for a POST
 * of a live session on its own transport (`post`), what the route answers; or, for a GET
 * that names a session (`lastWords`), that session's last words when it has some kept for this
 * endpoint, else the GET served as the route serves it when the session (live, or frozen for its
 * handoff) is attached to this endpoint's transport, else sent on to the node that holds the
 * session (`elsewhere`), else `answer`. `acks`: the GET's `ack` values (see `takeGetAck`).
 */
export interface ClosingVerdict {
  answer: EndpointAnswer
  /** The session an SSE or polling request names (its one `sid`), if it names one. */
  sid?: string
  lastWords?: { sid: string; kind: HttpTransportName; headers: HeaderBag; acks: string[] }
  /**
   * A POST of a live session on the transport it is attached to, or of a session frozen to be
   * handed off (which hears only its client's goodbye): read and handed to the session as the
   * route does (see `TakePost`), `answer` only if it is no longer there.
   */
  post?: PostVerdict
  /**
   * A POST or GET of a session this node does not hold (taken over by another node since it was
   * handed off, or never here: a relayed client's), sent on to the node that holds it, as the
   * route sends it while the server is open (see `ForwardAtClose`); `answer` when no such node can
   * be reached. For a GET, only once `lastWords` found nothing here to serve it with. Without
   * `sid`, a handshake POST: a resume (its HELLO names the session) of a session this node handed
   * off, sent on to a live node to claim it, or of one another node holds, sent there, as the
   * route sends them; `answer` for any other.
   */
  elsewhere?: {
    sid?: string
    kind: HttpTransportName
    headers: HeaderBag
    /** The route parameters of its URL, as the router reads them (see `Forwarder.ownerOf`). */
    params?: Record<string, string>
  }
  /**
   * A WebSocket upgrade the open endpoint would take: taken as the route takes it while the
   * server drains, since only its HELLO tells whether it resumes a session another node is to
   * claim or holds, which is relayed there as the route relays it (see `UpgradeAtClose`);
   * `answer` once the server has closed, as the route answers then.
   */
  upgrade?: true
  /**
   * With `upgrade`: the route parameters of its URL, as the router reads them, which a resume's
   * session on another node is looked up under (see `Forwarder.resumeOwner`).
   */
  upgradeParams?: Record<string, string>
}

export interface ClosingAnswersOptions {
  /** Where the endpoints are mounted (`mountBase`). */
  base: string
  transports: readonly TransportName[]
  /** The endpoints' origin check, for a request Fastify has not seen (see `checkRawOrigin`). */
  originOf: (request: EndpointRequest) => OriginVerdict
  /** The server's `maxPayload`, named in a 413. */
  maxPayload: number
  /** Whether a POST's head says its body passes `maxPayload`, as the routes judge it (`bodyTooLarge`). */
  tooLarge: (request: EndpointRequest) => boolean
  /**
   * Where `sid`'s session stands for a POST on endpoint `kind`, as the route judges it:
   * `attached` (live on this node, not frozen, on `kind`: the POST is read and its packets used,
   * see `UpstreamPosts`, and one past `maxPayload` ends it), `left` (live, not frozen, on another
   * transport or none: one past `maxPayload` is stale, 400 PARLEY_TRANSPORT_MISMATCH before it
   * would 413), `frozen` (being handed off, or finishing its middleware's events before the
   * shutdown ends it while the POST is of another transport, or ended with its last words
   * waiting here for the next GET on `kind`: it reads nothing of that client any more, a POST
   * gets 204 and one past `maxPayload` a plain 413), undefined (no session here, one handed off
   * and taken over elsewhere included, whatever it left here for the next GET: 503).
   */
  standing: (sid: string, kind: HttpTransportName) => SessionStanding | undefined
  /**
   * Whether a request of an SSE or polling endpoint left out of `transports` is heard all the
   * same, as the routes judge it (`heardWhileDisabled`); `held`: whether the sid it names is of
   * a session here (frozen, or live).
   */
  heardWhileDisabled: (request: EndpointRequest, held: () => boolean) => boolean
  /**
   * Whether a POST is a relayed goodbye that ends its session whatever transport it is on, as the
   * route judges it (`endsWherever`, routing.ts): one another node sent on to this one
   * (GOODBYE_ON), or a relayed client's late goodbye (GOODBYE) of a session `left` here.
   */
  goodbyeOn: (request: EndpointRequest, standing: SessionStanding | undefined) => boolean
  /** The options of the WebSocketServer that takes the upgrades, which ws checks them by (see `upgradeRefusal`). */
  upgradeSettings: () => UpgradeSettings
  /**
   * How the router reads a target before it matches a route (`RouterReading`), read at each
   * request: the routes served `/Parley/POLL`, `/parley/%70oll`, `/parley//poll`, `/parley/poll/`
   * or `/parley/poll;v=1` while the server ran, as the application set its router, so its answers
   * at close are for them too.
   */
  router?: Readonly<RouterReading>
  /**
   * The route parameters `sid`'s session opened under, while it is live here (see
   * `ParleyServer.paramsOf`): a request of it under others gets the route's 400.
   */
  paramsOf?: (sid: string) => RouteParams | undefined
}

/** A POST the endpoints hear at close, as the route does (see `ClosingVerdict.post`). */
export interface PostVerdict {
  sid: string
  kind: HttpTransportName
  headers: HeaderBag
  /**
   * A relayed goodbye another node sent on to this one (`goodbyeOn`): it ends the session here
   * whatever transport it is on, as on the route (see `ParleyServer.relayedGoodbye`).
   */
  goodbyeOn?: true
}

/** See `ClosingAnswersOptions.standing`. */
export type SessionStanding = 'attached' | 'left' | 'frozen'

// The endpoints' words, shared with their routes (routes.ts), so that an answer at close and
// the route's stay the same.
/** The methods the SSE and polling endpoints serve. */
export const HTTP_METHODS = 'GET, POST, OPTIONS'
export const OTHER_VERSION = `this server speaks v=${PROTOCOL_VERSION}`
/** What a 400 says to a request of the WebSocket endpoint that is no upgrade. */
export const EXPECTED_UPGRADE = 'expected a WebSocket upgrade'

/** What a 400 PARLEY_TRANSPORT_MISMATCH says to a request of a transport the session is not on. */
export function notAttachedMessage(kind: TransportName): string {
  return `the session is not attached to ${kind}`
}

/** What a 404 for a transport left out of `transports` says. */
export function disabledMessage(kind: TransportName, transports: readonly TransportName[]): string {
  return `the ${kind} transport is disabled: this server offers ${transports.join(', ')}`
}

/**
 * The endpoints' answers while the server closes, for the requests no route of Parley's can
 * answer then: those Fastify refuses from the first moment of `app.close()` (its
 * `return503OnClosing`), upgrades included, and those other nodes route here (`app.inject`
 * refuses them while Fastify closes, whatever its options). Each gets what the routes answer
 * then, in their order (routes.ts): 404 for a transport left out of `transports` (but a
 * relayed goodbye, see `heardWhileDisabled`), 405 for a method the endpoint does not serve, 400
 * for another protocol version, 403 for a page of an origin not allowed, 400 for a request of
 * the WebSocket endpoint that is no upgrade, or an upgrade that is no WebSocket handshake or does
 * not offer Parley's subprotocol (`upgradeRefusal`), a preflight's 204, 400 for an upgrade on the
 * SSE or polling endpoint, 400 for a GET there without a sid or a request with two, 400
 * PARLEY_UNKNOWN_SESSION for one of a live session under other route parameters than those it
 * opened with (`paramsOf`), 413 for a
 * POST whose Content-Length (or routed mark) passes `maxPayload` (which ends the live session it
 * names when that session is attached to the POST's transport, as on the route; 400
 * PARLEY_TRANSPORT_MISMATCH instead when it is on another transport, as the route judges a stale
 * POST before its size), what the route makes of a relayed goodbye another node sent on (`post`,
 * `goodbyeOn`) and of any other POST of a live session on the transport it is attached to
 * (`post`: read, its packets used), 204 for any other POST of a session frozen for its handoff
 * (its body unread: the route uses none of it), the owner's answer to a POST of a session another
 * node holds, or to a resume another node is to claim or holds (`elsewhere`), a well-formed
 * WebSocket upgrade taken as the route takes it while the server drains (`upgrade`: its HELLO
 * decides); the rest `503 PARLEY_SERVER_SHUTTING_DOWN`, the client's "try again"
 * (but a GET of a session gets its last words, when they wait for it, or is served when the
 * session is still here on the GET's transport, or else gets the answer of the node that holds
 * the session: see `ClosingVerdict`). Never anything the routes would not say.
 */
export class ClosingAnswers {
  #pathsMade: readonly (readonly [RouteMatch, TransportName])[] | undefined
  readonly #transports: readonly TransportName[]
  readonly #originOf: (request: EndpointRequest) => OriginVerdict
  readonly #maxPayload: number
  readonly #tooLarge: (request: EndpointRequest) => boolean
  readonly #standing: (sid: string, kind: HttpTransportName) => SessionStanding | undefined
  readonly #heardWhileDisabled: (request: EndpointRequest, held: () => boolean) => boolean
  readonly #goodbyeOn: (request: EndpointRequest, standing: SessionStanding | undefined) => boolean
  readonly #upgradeSettings: () => UpgradeSettings
  readonly #router: Readonly<RouterReading>
  readonly #paramsOf: (sid: string) => RouteParams | undefined
  readonly #endpoints: readonly [string, TransportName][]

  constructor({
    base,
    transports,
    originOf,
    maxPayload,
    tooLarge,
    standing,
    heardWhileDisabled,
    goodbyeOn,
    upgradeSettings,
    router = DEFAULT_READING,
    paramsOf = () => undefined,
  }: ClosingAnswersOptions) {
    const endpoints: [string, TransportName][] = [[`${base}/ws`, 'websocket']]
    for (const [kind, segment] of Object.entries(httpSegments) as [HttpTransportName, string][]) {
      endpoints.push([`${base}/${segment}`, kind])
    }
    this.#endpoints = endpoints
    this.#router = router
    this.#transports = transports
    this.#originOf = originOf
    this.#maxPayload = maxPayload
    this.#tooLarge = tooLarge
    this.#standing = standing
    this.#heardWhileDisabled = heardWhileDisabled
    this.#goodbyeOn = goodbyeOn
    this.#upgradeSettings = upgradeSettings
    this.#paramsOf = paramsOf
  }

  /**
   * The endpoints' paths as the router matches them, which a request's path is read against (see
   * `judge`): in lower case for one that ignores letter case, say, but an escape in the prefix as
   * written, and a prefix's parameter (`/:tenant`) any segment. Made at the first request judged,
   * after the router's reading is settled.
   */
  get #paths(): readonly (readonly [RouteMatch, TransportName])[] {
    this.#pathsMade ??= this.#endpoints.map(
      ([path, kind]) => [routeMatch(path, this.#router.rules), kind] as const,
    )
    return this.#pathsMade
  }

  /**
   * The verdict on `request`; undefined when it is not for one of the endpoints. `upgrade`: it
   * came as an upgrade (Node's `upgrade` event), not as a plain request.
   */
  judge(request: EndpointRequest, upgrade = false): ClosingVerdict | undefined {
    if (request.url === undefined) return undefined
    // In absolute form too, as the routes serve it (and the router reads it) while open.
    const url = originForm(request.url)
    const queryAt = queryStart(url, this.#router.semicolon)
    const target = queryAt < 0 ? url : url.slice(0, queryAt)
    const path = routedPath(target, this.#router.rules)
    const endpoint = path === undefined ? undefined : this.#paths.find(([route]) => route.is(path))
    if (endpoint === undefined) return undefined
    const [route, kind] = endpoint
    const params = new URLSearchParams(queryAt < 0 ? '' : url.slice(queryAt + 1))
    const method = request.method ?? ''
    if (kind === 'websocket' && method !== 'GET') {
      return { answer: notAllowed('GET', 'use GET with an upgrade') }
    }
    // The refusals below with the page's CORS headers on SSE and polling, as on the route, where
    // the origin is judged first; none on the WebSocket endpoint (a browser reads no refused
    // upgrade), where it is judged after them.
    const httpOrigin = kind === 'websocket' ? undefined : this.#originOf(request)
    const refusalCors = httpOrigin?.cors ?? {}
    /** The route parameters of the URL, as the router reads them (letter case kept). */
    const urlParams = () => route.params(routedPath(target, { ...this.#router.rules, anyCase: false }) ?? '')
    if (!this.#transports.includes(kind) && !this.#heardDisabled(request, kind, params, urlParams)) {
      const message = disabledMessage(kind, this.#transports)
      return { answer: coded(404, refusalCors, ErrorCode.TRANSPORT_DISABLED, message) }
    }
    if (kind !== 'websocket' && method !== 'GET' && method !== 'POST' && method !== 'OPTIONS') {
      return { answer: notAllowed(HTTP_METHODS, 'use GET or POST', refusalCors) }
    }
    // As Fastify parses the query: a `v` given twice is no version.
    const versions = params.getAll('v')
    const origin = httpOrigin ?? this.#originOf(request)
    if (versions.length !== 1 || versions[0] !== String(PROTOCOL_VERSION)) {
      const answer = coded(400, refusalCors, ErrorCode.UNSUPPORTED_VERSION, OTHER_VERSION)
      return { answer: { ...answer, refusedVersion: versionRefusal(kind, versions, request.headers) } }
    }
    if (!origin.allowed) {
      const answer = coded(403, origin.cors, ErrorCode.ORIGIN_FORBIDDEN, forbiddenMessage(origin))
      return { answer: { ...answer, refusedOrigin: origin } }
    }
    if (kind === 'websocket') {
      // What is wrong with the request itself is said as at any time: trying another server
      // would not mend it. No CORS headers, as on the route (a browser reads no refused upgrade).
      if (!upgrade) return { answer: coded(400, {}, ErrorCode.BAD_REQUEST, EXPECTED_UPGRADE) }
      versionAsText(request.headers)
      const refusal = upgradeRefusal(request.headers, this.#upgradeSettings())
      if (refusal) {
        const answer = coded(400, refusal.headers ?? {}, refusal.code, refusal.message)
        if (refusal.code !== ErrorCode.UNSUPPORTED_VERSION) return { answer }
        return { answer: { ...answer, refusedVersion: versionRefusal(kind, versions, request.headers) } }
      }
      return {
        answer: coded(503, {}, ErrorCode.SERVER_SHUTTING_DOWN, SHUTTING_DOWN),
        upgrade: true,
        upgradeParams: route.params(routedPath(target, { ...this.#router.rules, anyCase: false }) ?? ''),
      }
    }
    const cors = origin.cors
    if (request.headers.upgrade !== undefined) {
      return { answer: coded(400, cors, ErrorCode.UNEXPECTED_UPGRADE, `no upgrade on the ${kind} endpoint`) }
    }
    if (method === 'OPTIONS') {
      return { answer: { status: 204, headers: { ...cors, ...preflightHeaders(request) } } }
    }
    const sids = params.getAll('sid')
    if (sids.length > 1) return { answer: coded(400, cors, ErrorCode.BAD_REQUEST, 'one sid only') }
    const sid = sids[0]
    const kept = sid === undefined ? undefined : this.#paramsOf(sid)
    // As on the route: a session found by its sid alone, under other route parameters (another
    // tenant of `/:tenant`), is left alone, its GET's last words and its POST's events its own
    // route's. Its parameters are read as the router gives them, letter case kept.
    const cased = kept && routedPath(target, { ...this.#router.rules, anyCase: false })
    if (kept && !sameParams(kept, route.params(cased ?? ''))) {
      // What a request naming no session gets while closing (its sid left out: with a successor
      // at this path, that one answers it, as it would a stranger's), with none of its last words.
      if (method === 'POST' && this.#tooLarge(request)) {
        const answer = coded(413, cors, ErrorCode.PAYLOAD_TOO_LARGE, tooLargeMessage(this.#maxPayload))
        return { answer: { ...answer, bodyUnread: true } }
      }
      return { answer: coded(503, cors, ErrorCode.SERVER_SHUTTING_DOWN, SHUTTING_DOWN) }
    }
    const verdict = this.#forSession(request, kind, method, cors, params, sid)
    // Where the session lives (a resume's too) is asked with the request's route parameters: a
    // session another node holds or handed off under others is none of its (see
    // `OwnerLookup.ownerOf`).
    const elsewhere = verdict.elsewhere && {
      ...verdict.elsewhere,
      params: route.params(routedPath(target, { ...this.#router.rules, anyCase: false }) ?? ''),
    }
    return { ...verdict, ...(elsewhere && { elsewhere }), ...(sid !== undefined && { sid }) }
  }

  /** The verdict on an SSE or polling request that passed the endpoint's checks, of `sid`'s session. */
  #forSession(
    request: EndpointRequest,
    kind: HttpTransportName,
    method: string,
    cors: HeaderBag,
    params: URLSearchParams,
    sid: string | undefined,
  ): ClosingVerdict {
    if (method === 'GET' && sid === undefined) {
      return { answer: coded(400, cors, ErrorCode.BAD_REQUEST, 'a GET needs a sid') }
    }
    const standing = method === 'POST' && sid !== undefined ? this.#standing(sid, kind) : undefined
    if (method === 'POST' && sid !== undefined && this.#goodbyeOn(request, standing)) {
      // As on the route: heard whatever transport the session is on, or its state.
      const answer = coded(503, cors, ErrorCode.SERVER_SHUTTING_DOWN, SHUTTING_DOWN)
      return { answer, post: { sid, kind, headers: cors, goodbyeOn: true } }
    }
    if (method === 'POST' && this.#tooLarge(request)) {
      // As on the route: a POST of a transport its session has left is stale whatever its
      // size; one of the transport it is attached to ends it.
      if (standing === 'left') {
        const answer = coded(400, cors, ErrorCode.TRANSPORT_MISMATCH, notAttachedMessage(kind))
        return { answer: { ...answer, bodyUnread: true } }
      }
      const answer = coded(413, cors, ErrorCode.PAYLOAD_TOO_LARGE, tooLargeMessage(this.#maxPayload))
      return { answer: { ...answer, bodyUnread: true, ...(standing === 'attached' && { endsSession: sid }) } }
    }
    if (standing === 'attached' && sid !== undefined) {
      // Heard as when open: its events are taken (and acknowledged: the drain hands the session
      // off with them, or the ACK owed goes before its CLOSE 'server shutdown'), a body that does
      // not decode ends it, a goodbye ends it with 'client disconnect' before the drain would
      // freeze it. A refusal would leave the session to the close, whatever its client said.
      const answer = coded(503, cors, ErrorCode.SERVER_SHUTTING_DOWN, SHUTTING_DOWN)
      return { answer, post: { sid, kind, headers: cors } }
    }
    if (standing === 'frozen') {
      // As on the route: a refusal would fail the client's transport before it reads the CLOSE
      // 'server handoff' its next GET gets; nothing of the body is used, nor acknowledged, so
      // the client sends it again to the node that takes over. A session frozen to be handed off
      // still hears its client's goodbye there (`post`, see `UpstreamPosts.takeFrozen`); for the
      // others the body is not read (the connection closes after the answer).
      const answer: EndpointAnswer = { status: 204, headers: cors, bodyUnread: true }
      return sid === undefined ? { answer } : { answer, post: { sid, kind, headers: cors } }
    }
    const answer = coded(503, cors, ErrorCode.SERVER_SHUTTING_DOWN, SHUTTING_DOWN)
    // A handshake: its HELLO may resume a session another node is to claim, or holds.
    if (method === 'POST' && sid === undefined) return { answer, elsewhere: { kind, headers: cors } }
    if (!sid) return { answer }
    const elsewhere = { sid, kind, headers: cors }
    if (method === 'POST') return { answer, elsewhere }
    if (method !== 'GET') return { answer }
    return { answer, lastWords: { sid, kind, headers: cors, acks: params.getAll('ack') }, elsewhere }
  }

  /**
   * See `ClosingAnswersOptions.heardWhileDisabled`: a relayed goodbye of a session held here, but
   * not of one under other route parameters than `urlParams`, which gets the 404 of a sid of no
   * session (another tenant learns nothing of it).
   */
  #heardDisabled(
    request: EndpointRequest,
    kind: TransportName,
    params: URLSearchParams,
    urlParams: () => Record<string, string>,
  ): boolean {
    if (kind === 'websocket') return false
    const sids = params.getAll('sid')
    const sid = sids.length === 1 ? sids[0] : undefined
    return this.#heardWhileDisabled(request, () => {
      if (sid === undefined || this.#standing(sid, kind) === undefined) return false
      const kept = this.#paramsOf(sid)
      return kept === undefined || sameParams(kept, urlParams())
    })
  }
}

/** A coded answer with `headers`; the body is `{code, message}`. */
export function coded(status: number, headers: HeaderBag, code: string, message: string): EndpointAnswer {
  return { status, headers, body: { code, message } }
}

/** What a 413 PARLEY_PAYLOAD_TOO_LARGE says to a POST whose body passes `maxPayload`. */
export function tooLargeMessage(maxPayload: number): string {
  return `the body is larger than maxPayload (${maxPayload} bytes)`
}

function notAllowed(allowed: string, message: string, cors: HeaderBag = {}): EndpointAnswer {
  return coded(405, { ...cors, Allow: allowed }, ErrorCode.METHOD_NOT_ALLOWED, message)
}
