import type { Readable, Writable } from 'node:stream'
import { CloseReason, ErrorCode, type Packet } from '@parley/protocol'
import { NO_SUCH_SESSION } from '../route-params.js'
import type { Session } from '../session.js'
import { SHUTTING_DOWN } from '../shutting-down.js'
import type { HeaderBag } from '../transports/http.js'
import type { HttpTransportName } from '../transports/registry.js'
import type { HttpSide, Transport } from '../transports/transport.js'
import { type BodyFailure, BodyReader, type BodyResult, decodeBody, linesOfBody } from './body.js'
import {
  coded,
  type EndpointAnswer,
  notAttachedMessage,
  type PostVerdict,
  tooLargeMessage,
} from './closing-answers.js'

/**
 * What became of the goodbye in a POST of a handed-off session (see `UpstreamPosts.takeHandedOff`):
 * `heard` here, `sent on` to another node (which answered the client), or `none` (there was no
 * goodbye, or no node could hear it).
 */
export type GoodbyeHeard = 'heard' | 'sent on' | 'none'

/** What became of an upstream POST, for whoever answers it (the route, or the plugin at close). */
export interface UpstreamOutcome {
  /** Undefined when the client went before its body was in: there is nobody to answer. */
  answer: EndpointAnswer | undefined
  /** The packets handed to the session (its 204): what `sseUpstream: 'close-when-idle'` weighs. */
  packets?: readonly Packet[]
}

/**
 * Takes a POST of `post.sid`'s session on endpoint `post.kind`, its body read from `body` (see
 * `BodyReader.read` for `answered`), as the route takes it, when that session is still here and
 * attached to that endpoint's transport, or frozen to be handed off (see
 * `UpstreamPosts.takeFrozen`), or when it is a relayed goodbye sent on (`post.goodbyeOn`, see
 * `UpstreamPosts.takeGoodbyeOn`): undefined otherwise. `post.headers`: the page's headers.
 */
export type TakePost = (
  post: PostVerdict,
  body: Readable,
  answered?: Writable,
) => Promise<UpstreamOutcome> | undefined

export interface UpstreamPostsOptions {
  maxPayload: number
  /** A body of which nothing arrives for this long is given up (408). */
  stallMs: number
  /** Whether the length of each line is worked out for the session (the `metrics` option). */
  countSizes: () => boolean
}

/**
 * The upstream POSTs of the SSE and polling transports, read and handed to their session: by
 * the route while the server is open, and by the plugin while Fastify refuses requests at close
 * (see last-words.ts), so that a live session's client is heard the same either way (its events,
 * a body that does not decode, its goodbye). One POST at a time per transport, whichever of the
 * two reads it, so that packets cannot overtake each other. Per transport, not per session: a
 * POST's packets are used only if its transport is still the session's once the body is in, so
 * a POST on a transport that took over never waits for one on the transport it replaced, which
 * may be stuck on a dead connection.
 */
export class UpstreamPosts {
  /** Reads every body of the endpoints (`close()` gives up those still coming). */
  readonly bodies: BodyReader
  readonly #posting = new WeakSet<HttpSide>()
  readonly #maxPayload: number
  readonly #countSizes: () => boolean

  constructor({ maxPayload, stallMs, countSizes }: UpstreamPostsOptions) {
    this.bodies = new BodyReader(maxPayload, stallMs)
    this.#maxPayload = maxPayload
    this.#countSizes = countSizes
  }

  /**
   * Reads (`read`) the body of a POST of `transport`, the transport of kind `kind` that `session`
   * (not frozen) is attached to, and hands its packets to the session. `cors`: the page's headers.
   */
  async take(
    kind: HttpTransportName,
    session: Session,
    transport: Transport,
    http: HttpSide,
    cors: HeaderBag,
    read: () => Promise<BodyResult>,
  ): Promise<UpstreamOutcome> {
    if (this.#posting.has(http)) {
      return { answer: coded(409, cors, ErrorCode.REQUEST_IN_PROGRESS, 'another POST is in progress') }
    }
    this.#posting.add(http)
    try {
      const body = await read()
      if (!body.ok) {
        // The client may have resumed on another transport while this body came (stale, as
        // below), or the session may have frozen meanwhile.
        if (body.reason === 'too large')
          return { answer: this.tooLarge(kind, cors, session, session.transport === transport) }
        return { answer: this.notRead(body.reason, cors) }
      }
      const lines = linesOfBody(body)
      // Frozen while the body came (a drain, or a move, began): its goodbye still counts.
      if (session.state === 'frozen' && this.#goodbye(session, lines)) return { answer: taken(cors) }
      if (session.transport !== transport) {
        return { answer: coded(400, cors, ErrorCode.TRANSPORT_MISMATCH, notAttachedMessage(kind)) }
      }
      const decoded = decodeBody(lines, this.#maxPayload)
      if (!decoded.ok) {
        http.reject(decoded.error)
        return { answer: coded(400, cors, decoded.error.code, decoded.error.message) }
      }
      // Line lengths are worked out only when they are counted (the `metrics` option), and over
      // polling, where the ACK of large packets does not wait for company (`Session.#sendAck`).
      const sized = kind === 'polling' || this.#countSizes()
      http.receive(decoded.packets, sized && lines ? lineLengths(lines) : NO_SIZES)
      return { answer: { status: 204, headers: cors }, packets: decoded.packets }
    } finally {
      this.#posting.delete(http)
    }
  }

  /**
   * A POST of `session`, frozen to be handed off: nothing of its body is used (nor acknowledged:
   * the client sends it again to the node that takes over), and a refusal would fail the
   * client's transport before it reads the CLOSE 'server handoff' its next GET gets: 204. But a
   * goodbye in it ends the session here (see `Session.goodbyeWhileFrozen`): its client resumes
   * nowhere, and the snapshot would wait for a claim that never comes.
   */
  async takeFrozen(
    session: Session,
    cors: HeaderBag,
    read: () => Promise<BodyResult>,
  ): Promise<UpstreamOutcome> {
    const body = await read()
    if (!body.ok) return { answer: this.notRead(body.reason, cors) }
    this.#goodbye(session, linesOfBody(body))
    return { answer: taken(cors) }
  }

  /**
   * A relayed goodbye another node sent on to this one (GOODBYE_ON, see routing.ts), its body read
   * with `read`: its packets go to `end` (`ParleyServer.relayedGoodbye`), which ends the session
   * when they hold a CLOSE. 204 when `end` knew the session; a body that does not decode is
   * refused as any (400), and a session this node neither holds, takes over, nor ended is unknown
   * (400 PARLEY_UNKNOWN_SESSION): nothing sends it on again.
   */
  async takeGoodbyeOn(
    cors: HeaderBag,
    read: () => Promise<BodyResult>,
    end: (packets: readonly Packet[]) => boolean,
  ): Promise<UpstreamOutcome> {
    const body = await read()
    if (!body.ok) return { answer: this.notRead(body.reason, cors) }
    const decoded = decodeBody(linesOfBody(body), this.#maxPayload)
    if (!decoded.ok) return { answer: coded(400, cors, decoded.error.code, decoded.error.message) }
    if (!end(decoded.packets)) return { answer: coded(400, cors, ErrorCode.UNKNOWN_SESSION, NO_SUCH_SESSION) }
    return { answer: taken(cors) }
  }

  /**
   * A POST of a session whose node handed it off and is gone (its drain over: see routes.ts), its
   * body read with `read`: answered as that node answered a POST of the session frozen there
   * (`takeFrozen`): nothing of it is used, nor acknowledged (the client sends it again after the
   * resume its next GET's CLOSE 'server handoff' brings, and the node that claims the session
   * drops what it already has), 204; a refusal would fail the client's transport instead, and
   * the client tell its application and resume without the CLOSE's quiet time. Its goodbye
   * still ends the session: its packets, when they decode, go to `goodbye` with the body's text
   * (see `handedOffPost` in routes.ts), awaited before the answer. No answer when it sent the
   * POST on to another node, whose answer the client got. So too at close, where Fastify refuses
   * requests: the same 204 the drain gives (see `handedOffAtClose` in routes.ts).
   */
  async takeHandedOff(
    cors: HeaderBag,
    read: () => Promise<BodyResult>,
    goodbye: (packets: readonly Packet[], text: string) => Promise<GoodbyeHeard>,
  ): Promise<UpstreamOutcome> {
    const body = await read()
    if (!body.ok) return { answer: this.notRead(body.reason, cors) }
    const decoded = decodeBody(linesOfBody(body), this.#maxPayload)
    const heard = decoded.ok ? await goodbye(decoded.packets, body.text()) : 'none'
    return { answer: heard === 'sent on' ? undefined : taken(cors) }
  }

  /** A POST of `session` while the server closes: see `TakePost`. */
  takeFor(
    session: Session | undefined,
    kind: HttpTransportName,
    cors: HeaderBag,
    body: Readable,
    answered?: Writable,
  ): Promise<UpstreamOutcome> | undefined {
    if (session?.state === 'frozen')
      return this.takeFrozen(session, cors, () => this.bodies.read(body, answered))
    const transport = session?.transport
    if (!session || transport?.name !== kind || !transport.http) return undefined
    return this.take(kind, session, transport, transport.http, cors, () => this.bodies.read(body, answered))
  }

  /**
   * The answer to a POST whose body passes `maxPayload` (unread to its end either way): 413, and
   * the session ends with 'payload too large' only if it would have read that body, that is
   * when the POST is of the transport it is `attached` to and the session is not frozen. One
   * of a transport it has left is stale (400 PARLEY_TRANSPORT_MISMATCH). A frozen session reads
   * nothing of its client any more (it is being handed off, and the node that takes it over
   * judges whatever the client sends again): the POST is refused with 413 and the session
   * goes on, as one whose body is within the limit would. So does a session taken over from a
   * node with a larger limit, for a body within that one (`Session.largerLimitBefore`): its client
   * may have made the POST before this node's OPEN told it the smaller limit, and refuses such
   * packets itself once it has (its resume after the 413 brings that OPEN). `declared`: the
   * POST's Content-Length, undefined for a chunked body (given the benefit of the doubt).
   */
  tooLarge(
    kind: HttpTransportName,
    cors: HeaderBag,
    session: Session | undefined,
    attached: boolean,
    declared?: string,
  ): EndpointAnswer {
    if (session && session.state !== 'frozen') {
      if (!attached) {
        const stale = coded(400, cors, ErrorCode.TRANSPORT_MISMATCH, notAttachedMessage(kind))
        return { ...stale, bodyUnread: true }
      }
      if (!withinLimitBefore(session, declared)) session.end(CloseReason.PAYLOAD_TOO_LARGE)
    }
    return this.#unread('too large', cors)
  }

  /**
   * The answer to a POST whose body was not read to its end: 413 past `maxPayload`, 408 when it
   * stalled, 503 when the server closes; none when the client went. The connection closes
   * after it (`bodyUnread`): the rest of the body may still be on its way, and reading it only
   * to throw it away is not worth it (a stalled one may never come, and the connection would
   * wait for it).
   */
  notRead(reason: BodyFailure, cors: HeaderBag): EndpointAnswer | undefined {
    return reason === 'aborted' ? undefined : this.#unread(reason, cors)
  }

  #unread(reason: Exclude<BodyFailure, 'aborted'>, cors: HeaderBag): EndpointAnswer {
    const answer =
      reason === 'too large'
        ? coded(413, cors, ErrorCode.PAYLOAD_TOO_LARGE, tooLargeMessage(this.#maxPayload))
        : reason === 'stalled'
          ? coded(408, cors, ErrorCode.BAD_REQUEST, `nothing of the body came for ${this.bodies.stallMs} ms`)
          : coded(503, cors, ErrorCode.SERVER_SHUTTING_DOWN, SHUTTING_DOWN)
    return { ...answer, bodyUnread: true }
  }

  /**
   * Ends `session`, frozen, when the body's `lines` hold its client's goodbye; true when they did.
   * A body that does not decode is no goodbye: it is left as any of a frozen session.
   */
  #goodbye(session: Session, lines: readonly string[] | undefined): boolean {
    const decoded = decodeBody(lines, this.#maxPayload)
    return decoded.ok && session.goodbyeWhileFrozen(decoded.packets)
  }

  /** Gives up every body still coming, and every later one: the server closes. */
  close(): void {
    this.bodies.close()
  }
}

const NO_SIZES: readonly number[] = []

/** The answer to a POST whose body was heard: 204. */
function taken(cors: HeaderBag): EndpointAnswer {
  return { status: 204, headers: cors }
}

/** The length of each non-empty line of a POST body: one per packet, as decodeLines reads it. */
function lineLengths(lines: readonly string[]): number[] {
  const lengths: number[] = []
  for (const line of lines) if (line !== '') lengths.push(line.length)
  return lengths
}

/** Whether a POST past this node's limit is within the larger one the session had before its takeover. */
function withinLimitBefore(session: Session, declared: string | undefined): boolean {
  if (session.largerLimitBefore === 0) return false
  return declared === undefined || Number(declared) <= session.largerLimitBefore
}
