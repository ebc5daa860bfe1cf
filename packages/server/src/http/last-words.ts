import { type IncomingMessage, ServerResponse } from 'node:http'
import { Server as NetServer, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { FastifyBaseLogger } from 'fastify'
import { logLine } from '../burst-log.js'
import { failedInside } from '../refusals.js'
import type { HeaderBag } from '../transports/http.js'
import type { HttpTransportName } from '../transports/registry.js'
import type { HttpSide } from '../transports/transport.js'
import { type ClosingAnswers, type ClosingVerdict, coded, type EndpointAnswer } from './closing-answers.js'
import { closingConnection, connectionClose, endsConnection, keepForSuccessor } from './connection-close.js'
import type { UrlOf } from './fastify-closing.js'
import { lingerOnClose } from './lingering-close.js'
import { takeGetAck } from './session-get.js'
import { type RequestListener, standingRequestListeners, takeOver } from './takeovers.js'
import type { TakePost } from './upstream-post.js'

/** The transport whose last words wait for `sid`'s next GET on endpoint `kind`, taken out. */
export type TakeLastWords = (sid: string, kind: HttpTransportName) => HttpSide | undefined

/**
 * The transport of kind `kind` that `sid`'s session (live, or frozen for its handoff) is attached
 * to, if it is: a GET for it is served on it, as the route serves it.
 */
export type AttachedTransport = (sid: string, kind: HttpTransportName) => HttpSide | undefined

/**
 * Sends a POST or a GET of a session another node holds (`request`, see
 * `ClosingVerdict.elsewhere`) on to that node, a POST's body read here first, or a handshake POST
 * (no `sid`) whose HELLO resumes a session another node is to claim or holds; resolves with what
 * to answer here instead (`unsent` when no node could take it, what the body's failure says when
 * it could not be read), or undefined once the owner's answer went (or the client left).
 */
export type ForwardAtClose = (
  req: IncomingMessage,
  res: ServerResponse,
  request: NonNullable<ClosingVerdict['elsewhere']>,
  unsent: EndpointAnswer,
) => Promise<EndpointAnswer | undefined>

/**
 * Takes a WebSocket upgrade of the endpoint (`ClosingVerdict.upgrade`) as its route takes it
 * while the server drains: the WebSocket opens, and its HELLO is handled as on the route (a
 * resume of a session another node is to claim or holds relayed there). `params`: the route
 * parameters of its URL (`ClosingVerdict.upgradeParams`). False when it is not taken (the server
 * has closed): it is answered then.
 */
export type UpgradeAtClose = (
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  params: Record<string, string> | undefined,
) => boolean

export interface LastWordsOptions {
  /** `app.server`: Node's `http`, `https` and `http2` servers are taken over, no other. */
  server: unknown
  /**
   * Where Parley's own registration of @fastify/websocket listens (see websocket-registrations.ts),
   * taken over too: `app.injectWS` emits its upgrades there, not on `server`.
   */
  injected?: NetServer | undefined
  /** What the endpoints answer while no route of Parley's can (see closing-answers.ts). */
  answers: ClosingAnswers
  take: TakeLastWords
  attached: AttachedTransport
  /** Takes a POST of a live session on its own transport, as the route does. */
  post: TakePost
  /** Sends a POST or GET of a session another node holds on to that node, as the route does. */
  forward: ForwardAtClose
  /** Takes an upgrade of the WebSocket endpoint as its route does while the server drains. */
  upgrade: UpgradeAtClose
  /**
   * Resolves once `sid`'s session has ended, when it finishes the events in its middleware
   * before it ends (see `ParleyServer.finishing`); undefined otherwise.
   */
  finishing: (sid: string) => Promise<void> | undefined
  log: FastifyBaseLogger
  /** Fastify answers every request 503 while it closes (see `refusesWhileClosing`); undefined: not known. */
  fastifyRefuses: boolean | undefined
  /**
   * A request's URL as the application's router reads it (its `rewriteUrl`, see `routedUrl`):
   * the endpoints are answered at every URL the routes were reached at while open.
   */
  urlOf: UrlOf
  /**
   * Whether a Fastify instance registered on the server since mounts Parley at this path now,
   * closing or not, and this one's close has reached Parley (see `UpgradeClaim.succeeded`): then
   * only this mount point's own sessions are answered here.
   */
  succeeded?: () => boolean
  /**
   * Whether another Fastify instance mounting Parley at this path holds `sid` (see
   * `UpgradeClaim.heldElsewhere`): its requests are that one's to answer.
   */
  heldElsewhere?: (sid: string) => boolean
  /**
   * Whether an open instance on the server mounts Parley where a request's URL goes, more
   * specifically than this one (see `UpgradeClaim.outranked`): its requests are that one's.
   */
  outranked?: (url: string) => boolean
  /**
   * Whether `sid` names one of this mount point's sessions (see `ParleyServer.holds`): with a
   * successor at the path, the requests that name no such session are the successor's.
   */
  holds?: (sid: string) => boolean
  /**
   * Does what sending an answer does besides, as the routes do: counts the refusal it carries (a
   * page's origin, another version) in its log, ends the session it ends (`endsSession`).
   */
  sent: (answer: EndpointAnswer) => void
}

/**
 * Hands clients their session's last words while Fastify refuses requests, and the endpoints'
 * other requests Parley's own answers wherever no route of Parley's could answer them.
 *
 * From the first moment of `app.close()`, Fastify answers every request itself with a bare 503
 * (its `return503OnClosing`, on by default), before any route or hook runs, WebSocket upgrades
 * included. A session whose client had no GET waiting keeps its CLOSE 'server shutdown' (or a
 * drain's MOVED) for that client's next GET: a polling client between two answers, a client
 * that has not sent its first. Fastify's 503 would reach that GET instead, and the client would
 * report a lost transport rather than the shutdown and its `retryAfter`.
 *
 * `takeOver()`, when the server begins to close, puts one listener in the place of Fastify's
 * for requests, and one in the place of the upgrade listeners (@fastify/websocket's): they
 * answer the GETs that name a session with last words kept here and hand the other requests to
 * those listeners as they were, but for the endpoints' answers below; `release()`, once the
 * instance has closed, takes them off and puts those listeners back (one pair of them stands on
 * a server for every mount point closing there: see takeovers.ts). Node's `http`, `https` and
 * `http2` servers are taken over (on HTTP/2, Fastify's listener is a 'request' one too, of Node's
 * compatibility API, and the HTTP/1.1 requests and upgrades beside, `allowHTTP1`, come as on an
 * HTTP/1.1 server); with another server (Fastify's `serverFactory`), such a client meets the 503
 * and resumes as after any lost transport. An answer over HTTP/1.1 ends its connection; one over
 * HTTP/2 ends its stream alone (see `endsConnection`): the session's GOAWAY comes once the last
 * words are out (http2-sessions.ts).
 *
 * The endpoints' other requests get what the routes would answer them (`ClosingAnswers`): a
 * preflight its 204, a wrong method 405, another version 400, a page of an origin not allowed
 * 403, a malformed WebSocket upgrade 400 (a well-formed one, until Parley has closed, is taken
 * as its route takes it while the server drains: see `UpgradeAtClose`), a POST whose body
 * passes maxPayload 413 (ending its session as the route does), a POST of a live session on its
 * own transport what the route makes of it (see `UpstreamPosts`), a POST of a session frozen for
 * its handoff 204, a POST of a session another node holds, or of a handshake that resumes one,
 * the answer of that node (sent on, see `ForwardAtClose`), a GET of a session still here on the
 * GET's transport its stream or held poll, a GET of a session another node holds the answer of
 * that node (its stream or held poll relayed), the rest Parley's own `503
 * PARLEY_SERVER_SHUTTING_DOWN`, where Fastify's bare 503 has no code and no CORS headers, so that
 * a page on another origin could not read it. From `takeOver()` on when Fastify refuses every
 * request while it closes (`fastifyRefuses`, see `refusesWhileClosing`), since no route of
 * Parley's could answer them then; otherwise once Parley itself has closed (`shutDown()`, after
 * the drain), what its routes answer then. Until then, with `return503OnClosing: false`, they go
 * to the routes, which keep serving the drain (its sessions' requests, and those it forwards to
 * other nodes). Refused origins and versions are counted in logs of the same lines as the
 * routes'.
 */
export class LastWordsAtClose {
  readonly #server: NetServer | undefined
  readonly #injected: NetServer | undefined
  /**
   * The request listeners of the server when Parley was registered, but those of the mount
   * points' connection tracking: Fastify's.
   */
  readonly #fastify: RequestListener[] = []
  readonly #answers: ClosingAnswers
  readonly #take: TakeLastWords
  readonly #attached: AttachedTransport
  readonly #post: TakePost
  readonly #forward: ForwardAtClose
  readonly #upgrade: UpgradeAtClose
  readonly #finishing: (sid: string) => Promise<void> | undefined
  readonly #log: FastifyBaseLogger
  /** Fastify answers every request 503 while it closes (see `refusesWhileClosing`); undefined: not known. */
  readonly #fastifyRefuses: boolean | undefined
  readonly #urlOf: UrlOf
  readonly #sent: (answer: EndpointAnswer) => void
  readonly #succeeded: () => boolean
  readonly #holds: (sid: string) => boolean
  readonly #heldElsewhere: (sid: string) => boolean
  readonly #outranked: (url: string) => boolean
  /** Takes its answers off the server (see `takeOver`); set from the takeover on. */
  #leave: (() => void) | undefined
  /** Likewise on the stand-in server where `app.injectWS` emits its upgrades. */
  #leaveInjected: (() => void) | undefined
  /** The endpoints' requests are answered here, not handed to Fastify. */
  #refusing = false

  constructor({
    server,
    injected,
    answers,
    take,
    attached,
    post,
    forward,
    upgrade,
    finishing,
    log,
    fastifyRefuses,
    urlOf,
    sent,
    succeeded = () => false,
    holds = () => false,
    heldElsewhere = () => false,
    outranked = () => false,
  }: LastWordsOptions) {
    this.#answers = answers
    this.#take = take
    this.#attached = attached
    this.#post = post
    this.#forward = forward
    this.#upgrade = upgrade
    this.#finishing = finishing
    this.#log = log
    this.#fastifyRefuses = fastifyRefuses
    this.#urlOf = urlOf
    this.#sent = sent
    this.#succeeded = succeeded
    this.#holds = holds
    this.#heldElsewhere = heldElsewhere
    this.#outranked = outranked
    this.#injected = injected
    // `http`, `https` and `http2` servers are all `net.Server`s; an object of a serverFactory's
    // that is not has no such listeners to take the place of.
    if (!(server instanceof NetServer)) return
    this.#server = server
    this.#fastify = standingRequestListeners(server)
  }

  /**
   * Fastify is closing: from now on, a GET for a session with last words gets them, whatever
   * Fastify would say, and, when Fastify refuses every request now, the endpoints' other
   * requests get Parley's answers rather than Fastify's.
   */
  takeOver(): void {
    const server = this.#server
    if (!server || this.#leave) return
    if (this.#fastifyRefuses === true) this.#refusing = true
    // The upgrades `app.injectWS` makes come on the stand-in alone, with no connection under
    // them: @fastify/websocket's listener there would give them Fastify's bare 503. Those that
    // came through `server` were judged there already (see takeovers.ts).
    if (this.#injected) {
      this.#leaveInjected = takeOver(
        this.#injected,
        { request: () => false, upgrade: (req, socket, head) => this.#upgradeAnswered(req, socket, head) },
        () => false,
        () => true,
      )
    }
    this.#leave = takeOver(
      server,
      {
        // HTTP/2's request and response stand in for HTTP/1.1's, as they do on the routes
        // (Fastify's `reply.raw`): what is answered here reads and writes only what both have.
        request: (req, res) => this.#answered(req as IncomingMessage, res as ServerResponse),
        upgrade: (req, socket, head) => this.#upgradeAnswered(req, socket, head),
      },
      (listener) => this.#fastify.includes(listener),
      // @fastify/websocket's upgrade listener (registered after the plugin began, when Parley
      // registers it), and any of the application's: an upgrade for one of the endpoints is
      // answered here alone. Not the connection tracking of any mount point on the server,
      // which sees every upgrade (see `seesEverything`).
      () => true,
    )
  }

  /**
   * The instance has closed: its answers leave the server, and the listeners they stood in front
   * of go back on it once no other mount point's stand there (see takeovers.ts).
   */
  release(): void {
    this.#leave?.()
    this.#leaveInjected?.()
  }

  /**
   * Parley has closed: from now on the endpoints' requests are answered here as its routes
   * answer them, whatever Fastify would answer.
   */
  shutDown(): void {
    this.#refusing = true
  }

  #answered(req: IncomingMessage, res: ServerResponse): boolean {
    const url = this.#urlOf(req)
    const verdict = this.#answers.judge({ method: req.method, url, headers: req.headers })
    if (!verdict) return false
    const last = verdict.lastWords
    if (last && this.#serveLast(req, res, last)) return true
    // A successor at this path (an instance restarted while this one drains) serves the new
    // clients, and the sessions it holds: a relayed goodbye of one (the successor may have taken
    // over a session this one handed off) is its to hear. This one's own sessions are still
    // answered here, whichever instance the server hands the path's requests to now, each of
    // their requests, on any transport: the successor, which does not know them, would answer
    // PARLEY_UNKNOWN_SESSION, where this one's own words (a forward to the node that holds the
    // session, its 503) send the client on to resume.
    const succeeded = this.#succeeded()
    const sid = verdict.sid
    const own = sid !== undefined && this.#holds(sid)
    // A session of another instance at this path: the one this one succeeded, still closing as
    // this one closes in its turn (its answers stand behind this one's on the server), or a
    // successor's. This one's answer would end it with words of a server that never held it.
    if (sid !== undefined && !own && this.#heldElsewhere(sid)) return false
    // A URL an open instance's Parley takes, more specifically than this one's (`/acme/parley`
    // beside this one's `/:tenant/parley`): its new clients and sessions are that one's.
    if (!own && this.#outranked(url ?? '/')) return false
    if (succeeded && !own) return false
    if (!this.#refusing && !succeeded) return false
    // The connection's next requests, pipelined behind this one or sent later, are the
    // successor's: this one's answer leaves it open.
    if (succeeded) keepForSuccessor(req)
    const live = verdict.post
    const taken = live && this.#post(live, req, res)
    if (taken) {
      // A live session's POST on its own transport (the drain has yet to freeze it, or it
      // finishes the events in its middleware): heard as on the route, its goodbye included.
      void taken.then(
        ({ answer }) => {
          if (answer) this.#send(res, answer)
          else res.destroy()
        },
        (err: unknown) => {
          logLine(this.#log, 'warn', { err }, 'parley: could not take a POST at close')
          this.#failed(req, res, live.headers)
        },
      )
      return true
    }
    const http = last ? this.#attached(last.sid, last.kind) : undefined
    if (last && http) {
      // A session still here (the drain has yet to hand it off, or hands it off now, its CLOSE
      // 'server handoff' still to come; or it finishes the events in its middleware before its
      // CLOSE 'server shutdown'): its GET is served as on the route, not refused, which would
      // fail the client's transport before that CLOSE reaches it.
      const taken = takeGetAck(http, last.acks)
      if (!taken.ok) {
        this.#send(res, coded(400, last.headers, taken.error.code, taken.error.message))
        return true
      }
      try {
        http.downstream(res, { ...last.headers, ...closingConnection(req) }, taken.ack)
      } catch (err) {
        // Inside Node's 'request' listener, a throw would be uncaught (the process's end): the
        // route's "try again" instead, as a routed GET gets it (see `serveRouted`).
        logLine(this.#log, 'warn', { err }, 'parley: could not hand a client its last words at close')
        this.#failed(req, res, last.headers)
      }
      return true
    }
    // A session finishing the events in its middleware (see `ParleyServer.finishEvents`) on
    // another transport than this GET's: the GET waits for the CLOSE the session ends with.
    const ended = last && this.#finishing(last.sid)
    if (ended) {
      void ended
        .then(() => {
          if (res.destroyed || res.writableEnded) return
          if (!this.#serveLast(req, res, last)) this.#send(res, verdict.answer)
        })
        .catch((err: unknown) => {
          // A failure in taking or answering them, as its siblings' here: the route's "try again".
          logLine(this.#log, 'warn', { err }, 'parley: could not hand a client its last words at close')
          this.#failed(req, res, last.headers)
        })
      return true
    }
    const elsewhere = verdict.elsewhere
    if (elsewhere) {
      // Taken over by another node since this one handed it off, or never here (a relayed
      // client's): that node hears it, as when the route sends it on, until the forwarder closes
      // (a stream or a held poll then ends with CLOSE 'server handoff'). Refused, it would fail
      // its client's transport, and the client resume at once, without that CLOSE's quiet time,
      // where the session already is.
      void this.#forward(req, res, elsewhere, verdict.answer).then(
        (answer) => {
          if (answer) this.#send(res, answer)
        },
        (err: unknown) => {
          logLine(this.#log, 'warn', { err }, 'parley: could not send a request on at close')
          this.#failed(req, res, elsewhere.headers)
        },
      )
      return true
    }
    this.#send(res, verdict.answer)
    return true
  }

  /** Serves `last`'s kept words on `res`: false when none are kept for it. */
  #serveLast(
    req: IncomingMessage,
    res: ServerResponse,
    last: NonNullable<ClosingVerdict['lastWords']>,
  ): boolean {
    const kept = this.#take(last.sid, last.kind)
    if (!kept) return false
    // Served before the request is judged further (see `#answered`): the connection is the
    // successor's to serve next as well, when one serves the path.
    if (this.#succeeded()) keepForSuccessor(req)
    try {
      // The CORS headers the routes give this page; an HTTP/1.1 connection ends with the answer
      // (but for a successor's, see `closingConnection`).
      kept.serveLast(res, { ...last.headers, ...closingConnection(req) })
    } catch (err) {
      logLine(this.#log, 'warn', { err }, 'parley: could not hand a client its last words at close')
      res.destroy()
    }
    return true
  }

  /**
   * An upgrade for one of the endpoints, while Fastify refuses them: a WebSocket upgrade the
   * open endpoint would take is taken as its route takes it while the server drains (see
   * `UpgradeAtClose`); any other is answered as the routes would, on a response of its own over
   * the connection, which idle-connections.ts ends once the answer is out (Node hands an
   * upgrade's connection to its listeners for good).
   */
  #upgradeAnswered(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    // A new WebSocket, or a resume: this one's sessions there have theirs open already, and the
    // successor at this path takes the rest (see `claimUpgrades`).
    if (!this.#refusing || this.#succeeded()) return false
    const url = this.#urlOf(req)
    if (this.#outranked(url ?? '/')) return false
    const verdict = this.#answers.judge({ method: req.method, url, headers: req.headers }, true)
    if (!verdict) return false
    if (verdict.upgrade && this.#upgrade(req, socket, head, verdict.upgradeParams)) return true
    const res = new ServerResponse(req)
    res.assignSocket(socket as Socket)
    this.#send(res, verdict.answer)
    return true
  }

  /**
   * A request that failed inside the server here: answered as the route answers such a failure
   * (see `answerToFastifyError`), the client's "try again", while nothing of another answer has
   * gone; destroyed once its headers have (the client then sees a cut transport, the only end
   * left). A destroy before that would leave the client no code to act on: a reset connection
   * over HTTP/1.1, a stream reset over HTTP/2.
   */
  #failed(req: IncomingMessage, res: ServerResponse, cors: HeaderBag): void {
    if (res.destroyed || res.writableEnded) return
    if (res.headersSent) {
      res.destroy()
      return
    }
    const { status, code, message } = failedInside()
    // A POST whose body was not read to its end: its connection lingers after the answer.
    this.#send(res, { ...coded(status, cors, code, message), ...(!req.complete && { bodyUnread: true }) })
  }

  #send(res: ServerResponse, answer: EndpointAnswer): void {
    // Answered meanwhile by another (what the wait for a forward or a session's end raced with):
    // a second answer would throw in a promise nobody awaits. A response destroyed unanswered (its
    // client gone) still has its answer counted, and its session ended for a body too large.
    if (res.headersSent || res.writableEnded) return
    this.#sent(answer)
    // Not over HTTP/2: the lingering acts on a socket, there the whole connection's, which
    // carries the client's other streams (see `endsConnection`).
    if (answer.bodyUnread && endsConnection(res.req)) lingerOnClose(res)
    writeAnswer(res, answer, answer.bodyUnread === true)
  }
}

/**
 * An answer of the endpoints', as the routes give it; an HTTP/1.1 connection ends with it, but
 * one a successor serves next (see `closingConnection`), unless `unread` (its body was not read).
 */
export function writeAnswer(
  res: ServerResponse,
  { status, headers, body }: EndpointAnswer,
  unread = false,
): void {
  const text = body === undefined ? '' : JSON.stringify(body)
  res.writeHead(status, {
    ...headers,
    ...(unread ? connectionClose(res.req) : closingConnection(res.req)),
    'Cache-Control': 'no-store',
    ...(body !== undefined && { 'Content-Type': 'application/json; charset=utf-8' }),
    'Content-Length': Buffer.byteLength(text),
  })
  res.end(text)
}
