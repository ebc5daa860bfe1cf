import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from 'node:http'
import { pipeline, Readable } from 'node:stream'
import { ErrorCode } from '@parley/protocol'
import type { FastifyInstance } from 'fastify'
import inject from 'light-my-request'
import type { RoutedRequest, RoutedResponse } from '../adapter/adapter.js'
import { logLine } from '../burst-log.js'
import { failedInside } from '../refusals.js'
import { SHUTTING_DOWN } from '../shutting-down.js'
import type { HeaderBag } from '../transports/http.js'
import { type ClosingAnswers, coded, type EndpointAnswer } from './closing-answers.js'
import type { ForwardedRequest } from './forwarded-request.js'
import { type AttachedTransport, type ForwardAtClose, type TakeLastWords, writeAnswer } from './last-words.js'
import { isPseudoHeader, requestHost } from './request-host.js'
import { takeGetAck } from './session-get.js'
import type { TakePost } from './upstream-post.js'

/**
 * Marks a request that a node routed here from another one. The owner answers it itself, never
 * routes it on: a session that vanished meanwhile is unknown, not a loop between two nodes.
 */
export const ROUTED_HEADER = 'x-parley-routed'

/**
 * The routed mark's value on a resume a draining node sent on (see `Adapter.anotherNode`): a
 * node whose claim of it fails tells the client to try again rather than start a new session.
 * Also on the goodbye POST of a session handed off by a node that is gone, which a closing node,
 * claiming nothing any more, sends on to a live node: that node hears it as one that reached it
 * directly (see `handedOffPost` in routes.ts).
 */
export const SENT_ON = 'sent-on'

/**
 * On a goodbye sent on (SENT_ON): the nodes it was sent on to so far (or tried, and not reached),
 * their ids joined by commas, the receiving node's last. A node it reaches that is closing too,
 * and claims nothing, sends it on again to a live node not named there (see `goodbyeOfHandedOff`
 * in routes.ts), while fewer than `MAX_GOODBYE_HOPS` are: a ring of closing nodes cannot loop.
 * Ignored on any other request; a client that sets it itself can only steer the goodbye of a
 * session of its own.
 */
export const SENT_TO_HEADER = 'x-parley-sent-to'

/**
 * How many nodes a goodbye may be sent on to, one after the other (see `SENT_TO_HEADER`): more
 * than two nodes closing at once is rare (a rolling restart closes one at a time), and each hop
 * costs the goodbye a request.
 */
export const MAX_GOODBYE_HOPS = 4

/** Longer than any list of `MAX_GOODBYE_HOPS` node ids: such a header is nobody's. */
const MAX_SENT_TO_LENGTH = 1024

/**
 * The nodes a goodbye marked SENT_ON was sent on to (see `SENT_TO_HEADER`): none for one that
 * carries no such list (a node of an earlier version sent it), undefined for a list that is not
 * one, or that may go no further (`MAX_GOODBYE_HOPS`): it is sent on no further then.
 */
export function goodbyeSentTo(headers: IncomingHttpHeaders): string[] | undefined {
  const value = headers[SENT_TO_HEADER]
  if (value === undefined) return []
  if (typeof value !== 'string' || value.length > MAX_SENT_TO_LENGTH) return undefined
  const nodes = value.split(',').map((node) => node.trim())
  if (nodes.some((node) => node === '') || nodes.length >= MAX_GOODBYE_HOPS) return undefined
  return nodes
}

/**
 * The routed mark's value on a POST whose body passed `maxPayload` on the node that received it
 * (see `Forwarder.tooLarge`): sent on without its body, it tells the owner to answer as for such
 * a POST of its own, so that the outcome is the same whichever node the balancer picked.
 *
 * The mark comes in on the public endpoints, so a client may set it itself. That gains it
 * nothing: it names a session by its sid, a secret, so it can end only a session of its own
 * (which it may end anyway), and otherwise gets the 413 a large body would get it.
 */
export const TOO_LARGE = 'too-large'

/**
 * A POST whose body passes `maxPayload`, by its head alone: by its Content-Length, or as another
 * node found it (the TOO_LARGE mark, which a client may set too: see there).
 */
export function bodyTooLarge(headers: IncomingHttpHeaders, maxPayload: number): boolean {
  if (headers[ROUTED_HEADER] === TOO_LARGE) return true
  const length = Number(headers['content-length'])
  return Number.isFinite(length) && length > maxPayload
}

/**
 * The routed mark's value on a relayed client's late goodbye (see relayed-goodbye.ts): a POST of
 * a session that its node holds, frozen for a handoff or live (its relay closed by the relaying
 * node as that node closed: the session is on no transport, or another one than the POST's, and
 * ends there whatever it is on, see `endsWherever`), is heard there on the SSE and polling
 * endpoints whatever that node's `transports` (`heardWhileDisabled`), so that the goodbye does not
 * depend on which of them the nodes offer (none, with WebSocket alone).
 *
 * A client may set the mark itself: it names a session by its sid, a secret, so it can only end a
 * session of its own, which its goodbye ends anyway.
 */
export const GOODBYE = 'goodbye'

/**
 * The routed mark's value on a relayed goodbye (GOODBYE) that reached a node which no longer
 * holds its session (moved meanwhile to the node whose resume asked for it, crossing the goodbye:
 * see relayed-goodbye.ts), as that node sends it on to the session's node. Nobody sends it on
 * again: one hop more, never a loop. The session's node ends the session with 'client disconnect'
 * when its packets hold a CLOSE, whatever transport the session is on or waits for, and after its
 * takeover when that is still under way (see `ParleyServer.relayedGoodbye`); it is heard on the
 * SSE and polling endpoints whatever that node's `transports` (`heardWhileDisabled`).
 *
 * A client may set the mark itself, as GOODBYE: it can only end a session of its own.
 */
export const GOODBYE_ON = 'goodbye-on'

/** The routed mark's values: `'1'` for any request sent on, or one of the four above. */
export type RoutedMark = '1' | typeof SENT_ON | typeof TOO_LARGE | typeof GOODBYE | typeof GOODBYE_ON

/**
 * Whether a request of an SSE or polling endpoint that `transports` leaves out is heard all the
 * same: a POST marked as a relayed goodbye (GOODBYE) of a session held here, frozen for its
 * handoff or live (`held`, asked only for such a POST), or one sent on to the session's node
 * (GOODBYE_ON). Any other gets the endpoint's 404.
 */
export function heardWhileDisabled(
  method: string | undefined,
  headers: IncomingHttpHeaders,
  held: () => boolean,
): boolean {
  if (method !== 'POST') return false
  const mark = headers[ROUTED_HEADER]
  return mark === GOODBYE_ON || (mark === GOODBYE && held())
}

/**
 * Whether a POST of a session held here is heard as a goodbye that ends the session whatever
 * transport it is on or awaits (`ParleyServer.relayedGoodbye`): one another node sent on to the
 * session's node (GOODBYE_ON), or a relayed client's late goodbye (GOODBYE) of a session live here
 * on no transport, or another one than the POST's (`left`): the node that relayed its WebSocket
 * closed the relay as it closed, crossing the goodbye, and the session waits for its client's
 * resume (see relayed-goodbye.ts). Read as a POST of that session, it would be refused as one of a
 * transport the session is not on (400 PARLEY_TRANSPORT_MISMATCH), the goodbye lost.
 */
export function endsWherever(headers: IncomingHttpHeaders, left: () => boolean): boolean {
  const mark = headers[ROUTED_HEADER]
  return mark === GOODBYE_ON || (mark === GOODBYE && left())
}

/**
 * On the owner's answer to a routed POST: "close the client's connection after this answer"
 * (`sseUpstream: 'close-when-idle'`). The owner cannot say `Connection: close` itself, which
 * would close the connection between the nodes, which carries other clients too; the node that
 * forwarded the POST takes the mark off and closes its own connection to the client.
 */
export const CLOSE_CLIENT_HEADER = 'x-parley-close-client'

/** Headers that describe one hop, not the request: never copied from one node to the next. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'upgrade',
  'proxy-connection',
  'te',
  'trailer',
  'date',
])

/**
 * The plain form of a request, for `Adapter.routeRequest`; `mark`: the routed mark it goes with;
 * `sentTo`: the nodes a goodbye was sent on to, this one's included (see `SENT_TO_HEADER`).
 */
export function routedRequest(
  request: ForwardedRequest,
  body: string,
  mark: RoutedMark,
  sentTo?: readonly string[],
): RoutedRequest {
  const headers = plainHeaders(request.headers)
  // From an HTTP/2 client: its Host is its `:authority` (see `plainHeaders`).
  const host = requestHost(request.headers)
  if (host !== undefined) headers.host ??= host
  if (sentTo) headers[SENT_TO_HEADER] = sentTo.join(',')
  const method = request.method === 'POST' ? 'POST' : 'GET'
  const routed: RoutedRequest = {
    method,
    url: request.url,
    headers,
    body: method === 'POST' && body === '' && mark !== TOO_LARGE ? EMPTY_BODY_ROUTED : body,
    address: request.ip ?? '',
  }
  if (mark === SENT_ON) routed.sentOn = true
  else if (mark === TOO_LARGE) routed.tooLarge = true
  return routed
}

/**
 * What goes through the adapter in place of a client's empty POST body: a line break, which the
 * owner reads as it reads an empty body (empty lines are skipped: a body that holds no packet),
 * where '' would be taken for a POST sent on without its body, past maxPayload (see `routedMark`).
 */
export const EMPTY_BODY_ROUTED = '\n'

/** How many `close` listeners Node's `pipeline` puts on the stream it writes to. */
const PIPELINE_CLOSE_LISTENERS = 7

/**
 * Makes room on `res` for what `pipeline` adds to it: with the listeners the routes and the
 * forwarder put there (idle connections, the request's bookkeeping), an owner's answer sent on
 * to its client passed Node's default bound of ten, and each printed a
 * MaxListenersExceededWarning. They are one response's own, and go with it: no leak to report.
 */
export function roomForPipeline(res: ServerResponse): void {
  const max = res.getMaxListeners()
  if (max > 0) res.setMaxListeners(max + PIPELINE_CLOSE_LISTENERS)
}

/**
 * Streams the owner's answer to `request`'s client on `res` (no longer Fastify's: see
 * `Forwarder.handOver`); a client that goes away aborts it on the owner. `close`: the client's
 * connection closes after it, whatever the owner says (see `closingClient`).
 */
export function relayResponse(
  request: ForwardedRequest,
  res: ServerResponse,
  response: RoutedResponse,
  close = false,
): void {
  res.writeHead(response.status, closingClient(request, { ...response.headers }, close))
  roomForPipeline(res)
  pipeline(response.body, res, (err) => {
    if (err) response.abort()
  })
}

/**
 * Answers a request routed here from another node through this node's own endpoints (hooks,
 * origin checks and all), streaming the answer: an SSE stream or a held poll takes its time.
 * From the first moment of `app.close()`, Fastify refuses to inject anything
 * (FST_ERR_REOPENED_CLOSE_SERVER), whatever its `return503OnClosing`: the request then gets
 * what the endpoints answer a request that came here directly (`answers`, a
 * `503 PARLEY_SERVER_SHUTTING_DOWN` with the page's CORS headers; for a GET whose session keeps
 * its last words here, those, taken with `take`, as `LastWordsAtClose` hands them over; for a
 * GET of a session still finishing the events in its middleware (`finishing`), not on this GET's
 * transport, those or that 503 once the session has ended, as `LastWordsAtClose` waits; for a
 * POST of a live session on its own transport, what `post` makes of it; for a request of a
 * session another node holds, or a goodbye sent on here by another closing node, what `forward`
 * makes of it, as for such a request that came here directly: a goodbye goes on to a live node
 * from here, as it does over HTTP; the route's answer to a failure inside the server when
 * `post` or `forward` fails, or serving a GET does; at any time, that answer too when the
 * response is destroyed inside this node before its head went), rather than a failure that the
 * node which sent it on would take for an owner it cannot reach, and answer with a new session
 * while the client's own is still being handed on.
 */
export async function serveRouted(
  app: FastifyInstance,
  routed: RoutedRequest,
  answers: ClosingAnswers,
  sent: (answer: EndpointAnswer) => void,
  take: TakeLastWords,
  attached: AttachedTransport,
  post: TakePost,
  forward: ForwardAtClose,
  finishing: (sid: string) => Promise<void> | undefined,
): Promise<RoutedResponse> {
  const headers = { ...routed.headers, [ROUTED_HEADER]: routedMark(routed) }
  /** The routed request as Fastify's or light-my-request's `inject` takes it: as `method`. */
  const request = (method = routed.method) => ({
    method,
    url: routed.url,
    headers,
    payload: method === 'POST' ? routed.body : undefined,
    remoteAddress: routed.address,
    payloadAsStream: true as const,
  })
  // Judged with the mark the routes would have seen (a body that passed maxPayload on the node
  // that sent it on has no Content-Length here).
  const judge = () => answers.judge({ ...routed, headers })
  /**
   * The route's "try again" (see `failed` below) for a response destroyed inside this node before
   * its head went, where `inject` rejects: the node that routed the request in would take that
   * for an owner it cannot reach, and answer 400 PARLEY_UNKNOWN_SESSION, a new session for a
   * client whose own lives on here. Only a cut inside this node can destroy it then: that node
   * can let the answer go (`RoutedResponse.abort`) only once it has it.
   */
  const cutBeforeHead = (cors: HeaderBag): RoutedResponse => {
    const answer = failure(cors)
    sent(answer)
    return routedAnswer(answer)
  }
  try {
    return streamed(await app.inject(request()))
  } catch (err) {
    if (destroyedBeforeHead(err)) return cutBeforeHead(corsOf(judge()))
    if ((err as { code?: unknown }).code !== 'FST_ERR_REOPENED_CLOSE_SERVER') throw err
  }
  const verdict = judge()
  const last = verdict?.lastWords
  /**
   * A failure inside the server here, answered as `LastWordsAtClose` answers it: the route's
   * "try again", while no headers have gone, which the node that routed the request in passes
   * back to its client. A destroyed response would fail the routing itself, and that node take
   * this one for an owner it cannot reach: a new session for a client whose own lives on.
   */
  const failed = (res: ServerResponse, cors: HeaderBag) => {
    if (res.destroyed || res.writableEnded) return
    if (res.headersSent) {
      res.destroy()
      return
    }
    const answer = failure(cors)
    sent(answer)
    writeAnswer(res, answer)
  }
  /**
   * A GET served by `serve` on a response of the same kind as `inject`'s, which Fastify no longer
   * makes (Fastify's own library for it): a throw there is answered as in `failed`, with the warn
   * line `LastWordsAtClose` logs for it, where it would fail the routing itself.
   */
  const serveGet = (serve: (res: ServerResponse) => void, cors: HeaderBag) =>
    injected(
      inject((_req, res) => {
        try {
          serve(res)
        } catch (err) {
          logLine(app.log, 'warn', { err }, 'parley: could not hand a client its last words at close')
          failed(res, cors)
        }
      }, request('GET')),
      cors,
    )
  /** `inject`'s answer, streamed; `cutBeforeHead`'s for a response destroyed before its head. */
  const injected = async (answer: PromiseLike<Injected>, cors: HeaderBag): Promise<RoutedResponse> => {
    try {
      return streamed(await answer)
    } catch (err) {
      if (destroyedBeforeHead(err)) return cutBeforeHead(cors)
      throw err
    }
  }
  /** The last words `kept` for `last`, served as the route serves them to a routed GET. */
  const serveLast = (kept: NonNullable<ReturnType<TakeLastWords>>, words: NonNullable<typeof last>) =>
    serveGet((res) => kept.serveLast(res, words.headers), words.headers)
  const kept = last ? take(last.sid, last.kind) : undefined
  if (last && kept) return serveLast(kept, last)
  const live = verdict?.post
  const taken = live && post(live, Readable.from([Buffer.from(routed.body)]))
  if (taken) {
    // A live session's POST, heard as the route hears it (see `ClosingAnswers.judge`). The node
    // that sent it on leaves its client's connection open: no `Connection: close` crosses.
    let answer: EndpointAnswer
    try {
      answer = (await taken).answer ?? coded(503, {}, ErrorCode.SERVER_SHUTTING_DOWN, SHUTTING_DOWN)
    } catch (err) {
      // As in `failed`: a rejection here would fail the routing itself.
      logLine(app.log, 'warn', { err }, 'parley: could not take a POST at close')
      answer = failure(live.headers)
    }
    sent(answer)
    return routedAnswer(answer)
  }
  const http = last ? attached(last.sid, last.kind) : undefined
  let answer = verdict?.answer
  if (last && http) {
    // Served as the route serves it (see `LastWordsAtClose`), on a response of inject's kind.
    const taken = takeGetAck(http, last.acks)
    if (taken.ok) {
      return serveGet((res) => http.downstream(res, last.headers, taken.ack), last.headers)
    }
    answer = coded(400, last.headers, taken.error.code, taken.error.message)
  }
  // A session finishing the events in its middleware on another transport than this GET's, or
  // on none: the GET waits for the CLOSE the session ends with, as over HTTP (see
  // `LastWordsAtClose`), rather than be sent on to find the session unknown while it is still
  // here.
  const ended = last && !http ? finishing(last.sid) : undefined
  if (verdict && last && ended) {
    await ended
    const words = take(last.sid, last.kind)
    if (words) return serveLast(words, last)
    sent(verdict.answer)
    return routedAnswer(verdict.answer)
  }
  const elsewhere = verdict?.elsewhere
  if (verdict && elsewhere && !(last && http)) {
    // Sent on as the endpoints send it on at close (see `ForwardAtClose`), on a response of
    // inject's kind: a goodbye another closing node sent here goes on to a live node from here,
    // where a 503 would have that node pass this one over, and its own pick of live nodes be the
    // goodbye's last chance.
    const unsent = verdict.answer
    return injected(
      inject((req, res) => {
        void forward(req, res, elsewhere, unsent).then(
          (answer) => {
            if (!answer) return
            sent(answer)
            writeAnswer(res, answer)
          },
          (err: unknown) => {
            logLine(app.log, 'warn', { err }, 'parley: could not send a request on at close')
            failed(res, elsewhere.headers)
          },
        )
      }, request()),
      elsewhere.headers,
    )
  }
  // Routed requests are the endpoints' own: any other is only told to try again.
  answer ??= coded(503, {}, ErrorCode.SERVER_SHUTTING_DOWN, SHUTTING_DOWN)
  sent(answer)
  return routedAnswer(answer)
}

/**
 * Whether `inject` rejected because the response was destroyed before its head went
 * (light-my-request's 'response destroyed before completion'): once its head has gone, `inject`
 * has resolved, and a destroy only cuts the body that follows.
 */
function destroyedBeforeHead(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'LIGHT_ECONNRESET'
}

/** The page's CORS headers, as the endpoints' verdict on the request gives them (none without one). */
function corsOf(verdict: ReturnType<ClosingAnswers['judge']>): HeaderBag {
  if (!verdict) return {}
  return verdict.lastWords?.headers ?? verdict.post?.headers ?? verdict.elsewhere?.headers ?? {}
}

/** The route's answer to a request that failed inside the server (see `failedInside`). */
function failure(cors: HeaderBag): EndpointAnswer {
  const { status, code, message } = failedInside()
  return coded(status, cors, code, message)
}

/** What `inject` answers a request with (Fastify's, or light-my-request's own). */
type Injected = Awaited<ReturnType<FastifyInstance['inject']>>

/** An injected answer as the owner's answer to a routed request, streamed. */
function streamed(response: Injected): RoutedResponse {
  const raw = response.raw.res
  return {
    status: response.statusCode,
    headers: plainHeaders(response.headers),
    body: response.stream(),
    // The endpoints see their response closed, as when a client hangs up.
    abort: () => raw.destroy(),
  }
}

/** `answer` as the owner's answer to a routed request: nothing to stream, nothing to abort. */
function routedAnswer({ status, headers, body }: EndpointAnswer): RoutedResponse {
  const text = body === undefined ? '' : JSON.stringify(body)
  const plain: Record<string, string> = { ...headers, 'cache-control': 'no-store' }
  if (body !== undefined) plain['content-type'] = 'application/json; charset=utf-8'
  return { status, headers: plainHeaders(plain), body: Readable.from([text]), abort: () => {} }
}

/**
 * The routed mark a request routed through the adapter arrives with. A POST without a body is
 * taken as TOO_LARGE even when `tooLarge` did not come with it: the node that sent it on sends
 * no body only for one whose body passed maxPayload (see `Forwarder.tooLarge`), and a custom
 * adapter may not carry that field. Read as an empty body, it would be answered as if the client
 * had sent nothing wrong. A client's own empty body goes as EMPTY_BODY_ROUTED, and is answered
 * as on the node of its session (400 PARLEY_INVALID_PACKET), not with the 413 that ends it.
 */
function routedMark(routed: RoutedRequest): RoutedMark {
  if (routed.sentOn === true) return SENT_ON
  const bodiless = routed.method === 'POST' && !routed.body
  return routed.tooLarge === true || bodiless ? TOO_LARGE : '1'
}

function plainHeaders(headers: IncomingHttpHeaders | OutgoingHttpHeaders): Record<string, string> {
  const plain: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers)) {
    const key = name.toLowerCase()
    // HTTP/2's pseudo-headers (`:path`, ...) are no headers of the request the owner serves.
    if (
      value === undefined ||
      HOP_BY_HOP.has(key) ||
      isPseudoHeader(key) ||
      key === ROUTED_HEADER ||
      key === SENT_TO_HEADER
    )
      continue
    plain[key] = Array.isArray(value) ? value.join(', ') : String(value)
  }
  return plain
}

/**
 * The owner's answer headers for the client, the CLOSE_CLIENT_HEADER mark taken off and turned
 * into `Connection: close` (over HTTP/1.1; HTTP/2 has no such header); `close`: so turned
 * without the mark (the forwarding node left the client's body unread). Changes `headers`.
 */
export function closingClient<H extends Record<string, unknown>>(
  request: ForwardedRequest,
  headers: H,
  close = false,
): H {
  if (headers[CLOSE_CLIENT_HEADER] === undefined && !close) return headers
  delete headers[CLOSE_CLIENT_HEADER]
  if (request.raw.httpVersionMajor === 1) (headers as Record<string, unknown>).connection = 'close'
  return headers
}
