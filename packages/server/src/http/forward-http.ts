import type http from 'node:http'
import type { ServerResponse } from 'node:http'
import { pipeline, Readable } from 'node:stream'
import type { FastifyBaseLogger } from 'fastify'
import type { Adapter, RoutedResponse } from '../adapter/adapter.js'
import type { HttpTransportName } from '../transports/registry.js'
import { clientLeft } from './client-left.js'
import { type ClosingForwards, closeOf, type EndingForward } from './closing-forwards.js'
import {
  type ClientSide,
  codedAnswer,
  errorAnswer,
  handoffAnswer,
  isEventStream,
  tryAgain,
} from './forward-answers.js'
import { answerHeaders, forwardedHeaders } from './forward-headers.js'
import type { ForwardedRequest } from './forwarded-request.js'
import { type NodeAgents, nodeAddress, pathOnNode } from './node-agents.js'
import { codedError, MOST_READ, readAnswer } from './owner-answers.js'
import type { Owner } from './owner-lookup.js'
import { NoConnectionInTime } from './recently-unreachable.js'
import { goodbyePath, postGoodbye } from './relayed-goodbye.js'
import { RelayedStream } from './relayed-stream.js'
import {
  closingClient,
  GOODBYE,
  GOODBYE_ON,
  ROUTED_HEADER,
  type RoutedMark,
  relayResponse,
  roomForPipeline,
  routedRequest,
  SENT_TO_HEADER,
  TOO_LARGE,
} from './routing.js'

/** A request on its way to the owner: the client's side of it, answered on `res`. */
export interface Hop extends ClientSide {
  /** The answer is this node's from here on (a Fastify reply is hijacked). */
  take(): void
  /** The endpoint's transport, for a GET this node answers itself when it closes (see `end`). */
  kind?: HttpTransportName
  /**
   * The client's connection closes after the owner's answer, whatever the owner says: a request
   * sent on from a node that is closing (see `Forwarder.atClose`), as after every answer at close.
   */
  closes?: true
}

/**
 * What became of a request handed over: `answered` (the owner's answer went, or goes, to the
 * client), `gone` (the client went away first), or `unreachable` (nothing reached the owner and
 * nothing was sent to the client: the caller answers as for an unknown session, or as its
 * session's handoff says, when the client is still there to be answered).
 */
export type HandOver = 'answered' | 'gone' | 'unreachable'

/** A request on its way to an owner, or streaming from one, as `HttpForwards.end` ends it. */
interface Forwarding extends EndingForward {
  /** Begins its end: CLOSE 'server handoff' for a stream or a held poll; the rest goes on. */
  end(): void
}

export interface HttpForwardsOptions {
  adapter: Adapter
  log: FastifyBaseLogger
  /** The longest wait for a connection to the owner. */
  connectTimeout: number
  /** Where the forwarded requests end when this node closes (cut when the server closes). */
  closingForwards: ClosingForwards
  /** The CLOSE 'server handoff' a relayed client is told at close (see handoff-close.ts). */
  handoff(): string
  /** Called when the owner could not be reached at its URL `url` when it has one (counted and logged by the server). */
  unreachable(node: string, err: unknown, url?: string): void
  /**
   * Called instead of `unreachable` for a goodbye sent on (`Owner.sentTo`): `node` is no owner of
   * its session, only the live node picked for it, which could not be reached or refused it (logged
   * by the server as such).
   */
  goodbyeUnsent(node: string, err: unknown, url?: string): void
  /** See `ForwarderOptions.goodbyeEndpoint`. */
  goodbyeEndpoint: string
  /** The connections to the other nodes, by the scheme of their address (ended by `end`). */
  agents: NodeAgents
}

/**
 * Delivers SSE and polling requests to the node that owns their session, over `node:http` or
 * `node:https` on a keep-alive agent (or through the adapter's `routeRequest` for an owner without a URL), and
 * streams the owner's answer back: status, headers and body, for as long as it lasts. Ends them
 * as this node closes (`end`).
 */
export class HttpForwards {
  readonly #options: HttpForwardsOptions
  /**
   * Requests on their way to, or streaming from, an owner (over the network, keyed by their
   * request, or through the adapter), and the goodbyes sent on to one: ended when this node
   * closes (see `end`).
   */
  readonly #requests = new Map<object, Forwarding>()
  /** The responses of the requests in `#requests`, each with its key there (see `sending`). */
  readonly #responses = new WeakMap<ServerResponse, object>()
  #closed = false

  constructor(options: HttpForwardsOptions) {
    this.#options = options
  }

  /**
   * Hands `hop` to `owner` with `body` ('' for a GET) and `mark`. A request this node could no
   * longer send because it closed meanwhile is told to try again here; but a POST for a node that
   * was handing its session off is `unreachable` then, with nothing sent: the caller answers it
   * as for a node gone (see `handedOffPost` in routes.ts), and sends its goodbye on to a live
   * node, which a goodbye sent on (`Owner.sentTo`) still reaches after the close.
   */
  async deliver(owner: Owner, hop: Hop, body: string, mark: RoutedMark): Promise<HandOver> {
    if (this.#closed && owner.handingOff && hop.request.method === 'POST') return 'unreachable'
    const url = owner.url
    if (url === undefined) return this.#route(owner, hop, body, mark)
    let outcome = await this.#send({ ...owner, url }, hop, body, mark)
    // A kept-alive connection the owner had closed meanwhile: once more on a new one. A POST
    // sent twice is harmless, since the owner drops packets it already has (by `seq`).
    if (outcome === 'stale') outcome = await this.#send({ ...owner, url }, hop, body, mark)
    // Closed while the request was on its way here, or before its second try: nothing goes to
    // the owner any more (see `#tooLate`).
    if (outcome === 'closed') return this.#tooLate(hop)
    if (outcome === 'stale' || outcome instanceof Error) {
      this.#unreached(owner, outcome === 'stale' ? new Error('connection reset') : outcome)
      return 'unreachable'
    }
    // Nobody to answer (the client left): let its connection go.
    if (outcome === 'gone') {
      hop.take()
      hop.res.destroy()
    }
    return outcome
  }

  /** `owner` could not be reached (or refused a goodbye sent on): told as what it is to the request. */
  #unreached(owner: Owner, err: unknown): void {
    if (owner.sentTo) this.#options.goodbyeUnsent(owner.node, err, owner.url)
    else this.#options.unreachable(owner.node, err, owner.url)
  }

  /**
   * A relayed client's goodbye that came once the owner's side of its relay was closing: sent to
   * the owner `base` (its URL) as an upstream POST of session `sid` (see relayed-goodbye.ts). Also
   * once this node has closed: its close ended the relay, crossing the goodbye, which is the
   * client's last word; the close waits for it (`closingForwards`, see `Forwarder.close`).
   */
  goodbye(base: string, sid: string, request: ForwardedRequest, text: string): void {
    const closed = this.#closed
    const post = postGoodbye({
      agents: this.#options.agents,
      url: goodbyeUrl(
        base,
        `${goodbyePath(request.url, this.#options.goodbyeEndpoint)}&sid=${encodeURIComponent(sid)}`,
      ),
      headers: forwardedHeaders(request, true, GOODBYE),
      text,
      // After the close, a connection of its own: the agent's go once what ended with it is over.
      ownConnection: closed,
      timeoutMs: this.#options.connectTimeout,
      failed: (err) =>
        this.#options.log.debug({ err }, "parley: a relayed client's goodbye did not reach its node"),
    })
    const forward = { closed: closeOfRequest(post), end() {}, cut: () => post.destroy() }
    if (closed) {
      this.#options.closingForwards.add(forward)
      return
    }
    // Goes on to its end when this node closes: it is the client's last word.
    this.#requests.set(post, forward)
    post.once('close', () => this.#requests.delete(post))
  }

  /**
   * Whether the request answered on `res` is on its way to its owner, or answered from there:
   * `end` ends it, and its answer, when the owner has given none, is this node's.
   */
  sending(res: ServerResponse): boolean {
    return this.#responses.has(res)
  }

  /** The request `key` answered on `res` left `#requests` (a second try may be there already). */
  #over(res: ServerResponse, key: object): void {
    if (this.#responses.get(res) === key) this.#responses.delete(res)
  }

  /**
   * Ends every forwarded request as a drain ends a session's transport, since their sessions
   * live on, on their owners: an event stream or a held poll gets CLOSE 'server handoff', and its
   * client resumes elsewhere. What is under way otherwise (a POST, an answer) goes on to its end.
   * `closingForwards` waits for them, then cuts those still going; the agent's connections go
   * once they are over. Nothing is sent on after this but a goodbye (see `deliver`), whose
   * client's request the close waits for already (`ClosingForwards.lookingUp`).
   */
  end(): void {
    this.#closed = true
    const ending = [...this.#requests.values()]
    this.#requests.clear()
    for (const forward of ending) {
      forward.end()
      this.#options.closingForwards.add(forward)
    }
    void Promise.all(ending.map((forward) => forward.closed)).then(() => this.#options.agents.destroy())
  }

  /**
   * A request this node can no longer send on, its forwarder closed while the request was on its
   * way here (its owner looked up, its body read): a GET (an event stream, a poll) gets CLOSE
   * 'server handoff', as one relayed already does when the forwarder closes (see `end`); anything
   * else (a POST) is told to try again. Either way its client resumes or sends again through
   * another node with its quiet time, where a cut connection would fail its transport.
   */
  #tooLate(hop: Hop): HandOver {
    hop.take()
    if (hop.kind && hop.request.method === 'GET') {
      handoffAnswer(hop.res, hop.kind, hop.cors(), this.#options.handoff())
    } else tryAgain(hop, 'this node is closing: try again through another node', true)
    return 'answered'
  }

  /**
   * Through the adapter, for in-process adapters whose owners have no URL. Ended at close as
   * `#send` ends a request over the network: a stream with CLOSE 'server handoff' after its
   * event under way, a held poll (the adapter's answer still to come) answered that CLOSE here.
   */
  async #route(owner: Owner, hop: Hop, body: string, mark: RoutedMark): Promise<HandOver> {
    const node = owner.node
    const { request, res, kind } = hop
    if (this.#closed && !owner.sentTo) return this.#tooLate(hop)
    // Its client gone (as in `#send`): nobody to answer, and a close this node would never hear.
    if (clientLeft(res)) {
      hop.take()
      res.destroy()
      return 'gone'
    }
    let response: RoutedResponse | undefined
    let stream: RelayedStream | undefined
    /** This node answered the client itself at close, before the owner did. */
    let toldHere = false
    const key = {}
    this.#requests.set(key, {
      closed: closeOf(res),
      end: () => {
        if (stream) stream.end(this.#options.handoff())
        else if (!response && kind && request.method === 'GET' && !res.headersSent) {
          toldHere = true
          hop.take()
          handoffAnswer(res, kind, hop.cors(), this.#options.handoff())
        }
      },
      cut: () => {
        if (!response && request.method === 'POST' && !res.headersSent && !clientLeft(res)) {
          // The owner has not answered in time: told to try again, as in `#send`.
          toldHere = true
          hop.take()
          tryAgain(hop, UNANSWERED, true)
          return
        }
        response?.abort()
        res.destroy()
      },
    })
    this.#responses.set(res, key)
    res.once('close', () => this.#requests.delete(key))
    try {
      const routed = routedRequest(request, body, mark, owner.sentTo)
      response = await this.#options.adapter.routeRequest?.(node, routed)
      if (!response) throw new Error('the adapter cannot route requests')
    } catch (err) {
      if (toldHere) return 'answered'
      this.#requests.delete(key)
      this.#over(res, key)
      this.#unreached(owner, err)
      return 'unreachable'
    }
    // Told here at close, or the client left meanwhile: the owner sees its request closed, as
    // in `#send`. Over HTTP/2 only the stream says the client reset it (see `clientLeft`), and a
    // listener put on the response from here on would never hear its close.
    if (toldHere || clientLeft(res)) {
      response.abort()
      return toldHere ? 'answered' : 'gone'
    }
    const answer = response
    /** Nothing goes to the client: the caller tries the next node (see `refusedGoodbye`). */
    const refuse = (): HandOver => {
      answer.abort()
      this.#requests.delete(key)
      this.#over(res, key)
      this.#unreached(owner, refusal(answer.status))
      return 'unreachable'
    }
    if (refusedGoodbye(owner, answer.status)) return refuse()
    let relayed = answer
    if (owner.sentTo && answer.status >= 400) {
      // A 4xx to a goodbye sent on: the client's answer when coded, else about the hop.
      const read = await readRouted(answer.body)
      if (toldHere || clientLeft(res)) {
        answer.abort()
        return toldHere ? 'answered' : 'gone'
      }
      if (!read.whole || !codedError(read.body)) return refuse()
      relayed = { ...answer, body: Readable.from([read.body]) }
    }
    hop.take()
    if (request.method === 'GET' && isEventStream(response.headers['content-type'])) {
      const owned = response
      const events = owned.body instanceof Readable ? owned.body : Readable.from(owned.body)
      res.writeHead(owned.status, closingClient(request, { ...owned.headers }, closes(hop, mark)))
      res.flushHeaders()
      // Let go at the owner once its stream ends here, whichever way, or its client left: the
      // owner sees its request closed, as a client that hung up on it directly.
      events.once('close', () => owned.abort())
      res.once('close', () => owned.abort())
      stream = new RelayedStream(events, res, () => {
        owned.abort()
        res.destroy()
      })
      return 'answered'
    }
    relayResponse(request, res, relayed, closes(hop, mark))
    return 'answered'
  }

  /**
   * One attempt, to `owner`'s URL. `stale`: a reused keep-alive connection failed before any
   * answer (try again); an Error: the owner could not be reached; `closed`: this node's forwarder
   * closed, and sends nothing more; nothing went to the client in any of these cases.
   */
  #send(
    owner: Owner & { url: string },
    hop: Hop,
    body: string,
    mark: RoutedMark,
  ): Promise<'answered' | 'gone' | 'stale' | 'closed' | Error> {
    const { request, res, kind } = hop
    // Over HTTP/2 only the stream says its client reset it (see `clientLeft`): sent on all the
    // same, the request would hold a poll or a stream on the owner for nobody, and wait for good
    // on a response whose close came before anyone listened for it.
    if (clientLeft(res)) return Promise.resolve('gone')
    if (this.#closed && !owner.sentTo) return Promise.resolve('closed')
    let target: URL
    try {
      target = nodeAddress(owner.url)
    } catch (err) {
      return Promise.resolve(err instanceof Error ? err : new Error(String(err)))
    }
    const headers = forwardedHeaders(request, false, onward(request, mark))
    if (owner.sentTo) headers[SENT_TO_HEADER] = owner.sentTo.join(',')
    // A goodbye sent on after the close (see `deliver`): the agent is going, and its connection
    // with it, rather than left open to the other node.
    if (this.#closed) headers.connection = 'close'
    if (request.method === 'POST') headers['content-length'] = String(Buffer.byteLength(body))
    return new Promise((resolve) => {
      const upstream = this.#options.agents.request(target, {
        method: request.method,
        path: pathOnNode(target, request.url),
        headers,
      })
      upstream.setNoDelay(true)
      let answered = false
      let stream: RelayedStream | undefined
      this.#requests.set(upstream, {
        closed: Promise.all([closeOfRequest(upstream), closeOf(res)]).then(() => {}),
        end: () => {
          if (stream) stream.end(this.#options.handoff())
          // A held poll, or a stream the owner has yet to answer: the client is told here.
          else if (!answered && kind && request.method === 'GET' && !res.headersSent) {
            answered = true
            hop.take()
            resolve('answered')
            handoffAnswer(res, kind, hop.cors(), this.#options.handoff())
            upstream.destroy()
          }
        },
        cut: () => {
          if (!answered && request.method === 'POST' && !res.headersSent && !clientLeft(res)) {
            // Sent whole, but the owner has not answered in the time this node gives what it
            // forwards at close: told to try again, as a POST it could no longer send on
            // (`#tooLate`). Cut, the client's transport would fail with no code. Whatever of
            // it the owner took and did not acknowledge, the client sends again after its
            // resume, and the owner drops what it already has.
            answered = true
            hop.take()
            resolve('answered')
            upstream.destroy()
            tryAgain(hop, UNANSWERED, true)
            return
          }
          upstream.destroy()
          res.destroy()
        },
      })
      this.#responses.set(res, upstream)
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
        this.#over(res, upstream)
        res.off('close', onClientGone)
        if (!answered) resolve('gone')
      })
      // Bounded while connecting; once connected, an answer may take its time (a held poll).
      upstream.once('socket', (socket) => {
        if (!socket.connecting) return
        timer = setTimeout(
          () =>
            upstream.destroy(
              new NoConnectionInTime(`no connection within ${this.#options.connectTimeout} ms`),
            ),
          this.#options.connectTimeout,
        )
        socket.once('connect', () => clearTimeout(timer))
      })
      upstream.once('response', (answer) => {
        answered = true
        const status = answer.statusCode ?? 502
        /** Nothing goes to the client: the caller tries the next node (see `refusedGoodbye`). */
        const refuse = () => {
          this.#requests.delete(upstream)
          this.#over(res, upstream)
          res.off('close', onClientGone)
          resolve(refusal(status))
        }
        if (refusedGoodbye(owner, status)) {
          answer.resume()
          refuse()
          return
        }
        if (owner.sentTo && status >= 400) {
          // A 4xx to a goodbye sent on: the client's answer when coded, else about the hop.
          readAnswer(answer, (body, whole) => {
            // Read to its end, the connection goes back to the agent; else it goes.
            if (!whole) upstream.destroy()
            if (!whole || !codedError(body)) {
              refuse()
              return
            }
            hop.take()
            resolve('answered')
            if (!clientLeft(res)) codedAnswer(hop, answer, status, body, closes(hop, mark))
          })
          return
        }
        hop.take()
        resolve('answered')
        if (status >= 400) {
          errorAnswer(hop, upstream, answer, status, closes(hop, mark))
          return
        }
        const headers = closingClient(request, answerHeaders(answer.headers), closes(hop, mark))
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
        roomForPipeline(res)
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
        // Its client reset it, and this node cut the request (`onClientGone`): no failure of
        // the owner's. Over HTTP/2 only the stream says so (see `clientLeft`).
        if (clientLeft(res)) resolve('gone')
        else if (upstream.reusedSocket && err.code === 'ECONNRESET') resolve('stale')
        else resolve(err)
      })
      upstream.end(request.method === 'POST' ? body : undefined)
    })
  }
}

/**
 * Whether `status`, the answer to a goodbye sent on to a live node (`Owner.sentTo`), says that
 * node did not take it: any 5xx, a failure of the node or of the way to it, not of the request. A
 * 503: its Fastify refuses requests as it closes, its server closed with a connection to it still
 * open, or the application refuses them; a 502 or 504: a proxy between the nodes found it gone or
 * too slow; a 500: it failed on it. Such a node is passed over as one that cannot be reached (see
 * `goodbyeOfHandedOff` in routes.ts), rather than its answer going to the client with the goodbye
 * lost. A 4xx with a code (Parley's, or an application hook's) is about the request itself (its
 * origin, its version, its body), which the next node would refuse the same: it goes to the
 * client. A bare 4xx (no code: from before the node's routes, 431 for headers past its limit once
 * this node added its own, or a proxy's) is about the hop, not the request: the goodbye goes to
 * the next node, as for a 5xx (its body read first, by the caller).
 */
function refusedGoodbye(owner: Owner, status: number): boolean {
  return owner.sentTo !== undefined && status >= 500
}

/** The start of a routed answer's body (up to `MOST_READ`); `whole` when that is all of it. */
async function readRouted(
  body: AsyncIterable<Uint8Array | string>,
): Promise<{ body: string; whole: boolean }> {
  let text = ''
  try {
    for await (const chunk of body) {
      text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8')
      if (text.length > MOST_READ) return { body: text, whole: false }
    }
  } catch {
    return { body: text, whole: false }
  }
  return { body: text, whole: true }
}

/** What a refused goodbye (see `refusedGoodbye`) is logged with. */
function refusal(status: number): Error {
  return new Error(`answered ${status} to a goodbye sent on`)
}

/** What a POST sent on is told when its owner has not answered by the end of this node's close. */
const UNANSWERED = 'the node of this session did not answer before this node closed: try again'

/** Where a relayed client's late goodbye goes on the node at `base` (see `pathOnNode`). */
function goodbyeUrl(base: string, path: string): URL {
  const node = new URL(base)
  return new URL(pathOnNode(node, path), node)
}

/** Settles once `request`, to another node, has closed (at once when it has). */
function closeOfRequest(request: http.ClientRequest): Promise<void> {
  if (request.closed) return Promise.resolve()
  return new Promise((resolve) => request.once('close', () => resolve()))
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
function closes(hop: Hop, mark: RoutedMark): boolean {
  return hop.closes === true || mark === TOO_LARGE
}
