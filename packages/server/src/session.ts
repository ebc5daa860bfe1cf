import {
  type ClosePacket,
  CloseReason,
  checkEncoded,
  decodeText,
  ErrorCode,
  type ErrorPacket,
  type EventPacket,
  type NumberedPacket,
  namedAfterEvent,
  type Packet,
  PacketType,
  ParleyError,
  type PreparedEvent,
  type ReplyPacket,
  type TransportName,
} from '@parley/protocol'
import { nanoid } from 'nanoid'
import type { SessionSnapshot } from './adapter/handoff.js'
import { FrozenGoodbye } from './frozen-goodbye.js'
import { InputFirstTimer } from './input-first-timer.js'
import type { Metrics } from './metrics.js'
import { SHUTTING_DOWN } from './shutting-down.js'
import { Timed, TimerQueue } from './timer-queue.js'
import {
  type CloseKind,
  isPreparedEvent,
  KEEP_AS_UTF8_FROM,
  keptAsUtf8,
  type Outgoing,
  outgoing,
  preparedOutgoing,
  replayedText,
  type Transport,
  type TransportCloseReason,
  type TransportOwner,
} from './transports/transport.js'

/**
 * Where a session stands. `frozen`: its node is draining and hands it off; it reads nothing
 * more from the client but its goodbye, and numbers what is still sent to it into a tail (see
 * `freeze`).
 */
export type SessionState = 'attached' | 'detached' | 'frozen' | 'closed'

/** The session's own part of a `SessionSnapshot`: what `freeze` gives and a restore takes. */
export type SessionBooks = Pick<SessionSnapshot, 'sid' | 'id' | 'inSeq' | 'outSeq' | 'kept' | 'maxPayload'>

/** An application packet from the client, delivered in order and once. */
export type IncomingMessage = EventPacket | ReplyPacket | ErrorPacket

/**
 * What a session tells the layer above it (the application's socket, which implements this
 * itself: no object in between for each connection).
 */
export interface SessionOwner {
  sessionMessage(packet: IncomingMessage): void
  sessionTransportChanged(now: TransportName | null, before: TransportName | null): void
  sessionEnded(reason: CloseReason): void
}

/** The part of the server options a session runs on. */
export interface SessionConfig {
  pingInterval: number
  pingTimeout: number
  /**
   * Part of how long an SSE or polling transport's first GET may take (see `firstGetWithin`):
   * the OPEN's way to its client, a handshake step as a WebSocket's HELLO is.
   */
  handshakeTimeout: number
  maxPayload: number
  maxBufferedBytes: number
  /** Volatile packets are dropped while `bufferedAmount` is at or past this many bytes. */
  highWaterMark: number
  /** 0 disables recovery: a lost transport ends the session. */
  recoveryWindow: number
  transports: TransportName[]
  /** Counts messages, switches and ends (`noMetrics` without the `metrics` option). */
  metrics: Metrics
  /** Oddities worth a log line. */
  warn(message: string, error?: unknown): void
  /** The client's input ended the session ('invalid packet'): worth a log line, not one each. */
  invalid(error: ParleyError): void
  /** A closed transport still holds last words (CLOSE, MOVED) for a downstream yet to come. */
  linger(sid: string, transport: Transport): void
  /**
   * The session ended with `close` (sent or not; for 'client disconnect', the client's own
   * goodbye), having taken the client's packets up to `seq` `ack`: a later resume of it is
   * answered with it (and that ACK, for a client that reads one first).
   */
  ended(sid: string, close: Outgoing<ClosePacket>, ack: number): void
}

/** Options of `Session.end`. */
export interface EndOptions {
  message?: string
  retryAfter?: number
  /** Whether to send a CLOSE packet first (not when the client itself said goodbye). */
  notify?: boolean
  kind?: CloseKind
}

/** ACK at once when this many packets wait for one, else within ACK_DELAY ms. */
const ACK_BATCH = 32
const ACK_DELAY = 200
/**
 * An ACK its timer sends waits for the transport's next packet where one alone costs the client
 * a request (polling, see `Transport.ackWithNext`), while the packets it covers hold fewer bytes
 * than this: the client keeps them until then (up to a pingInterval), and one that sent large
 * packets should not keep megabytes for an ACK saved.
 */
const ACK_WITH_NEXT_BYTES = 64 * 1024
/**
 * A transport that holds this many bytes its client has not read is taken for one whose client
 * does not read (one that reads has a few packets in flight at most):
 * - an ACK waits, and goes (one, for everything) once fewer wait. It would only queue behind
 *   what the client has not read, and a client that keeps sending and never reads would have the
 *   server queue one small frame per ACK_BATCH of its packets: on a WebSocket each holds about
 *   200 bytes of heap (a write request and its buffers) for the 12 that `bufferedAmount` counts,
 *   some 150 MB before `maxBufferedBytes` (8 MiB) ends the session;
 * - a WebSocket replaced by a resume is cut rather than closed (see `attach`).
 */
const UNREAD_BYTES = 64 * 1024

/**
 * The most numbers a restored session skips to follow its client's ack (see `Session.#skipTo`),
 * and the room for numbers it always leaves below Number.MAX_SAFE_INTEGER.
 */
const MOST_SKIPPED = 2 ** 32
/** Bytes counted per kept packet on top of its size, so that the count is bounded too. */
const KEPT_OVERHEAD = 64
/**
 * How long a gap in the client's numbers may stay open before its transport is let go (see
 * `Session.#lostBefore`). A POST its client sent before a resume can reach the server after it,
 * its first packets lost with the old connection: the resume's own resend fills that gap at once,
 * and letting go at the first sight of it would cost the client a second resume for nothing.
 */
export const GAP_GRACE_MS = 1000

/** A gap in a client's numbers on one transport, while its grace runs (see `Session.#lostBefore`). */
interface OpenGap {
  /** The highest number seen past the gap: it is filled once the session has taken it. */
  seq: number
  readonly transport: Transport
  readonly grace: InputFirstTimer
}

const defaultMessages: Record<CloseReason, string> = {
  'client disconnect': 'the client disconnected',
  'server disconnect': 'the server disconnected the socket',
  'server shutdown': SHUTTING_DOWN,
  'server handoff': 'the server is draining: resume the session on another node',
  'ping timeout': 'no transport came back within the recovery window',
  'transport close': 'no transport came back within the recovery window',
  'invalid packet': 'the client sent a packet that does not decode',
  'payload too large': 'the client sent more than maxPayload',
  'slow consumer': 'the client reads too slowly: its buffer passed the limit',
  'session expired': 'the session expired',
}

/**
 * The CLOSE of each reason with its default message, made once: the ended-sessions table keeps
 * a session's CLOSE for the recovery window, up to 10 000 of them, and most ends say what their
 * reason says by default. Frozen, as every session that ends so shares it.
 */
const defaultCloses = new Map<CloseReason, Outgoing<ClosePacket>>()

function defaultClose(reason: CloseReason): Outgoing<ClosePacket> {
  let close = defaultCloses.get(reason)
  if (!close) {
    const made = outgoing<ClosePacket>({ type: PacketType.CLOSE, reason, message: defaultMessages[reason] })
    Object.freeze(made.packet)
    close = Object.freeze(made)
    defaultCloses.set(reason, close)
  }
  return close
}

/**
 * The CLOSE of a new session whose client never came for it (see `Session.#arrived`), made once
 * and shared as the default ones are: a proxy that loses every answer to a HELLO ends many.
 */
let neverCame: Outgoing<ClosePacket> | undefined

function neverCameClose(): Outgoing<ClosePacket> {
  if (!neverCame) {
    const made = outgoing<ClosePacket>({
      type: PacketType.CLOSE,
      reason: CloseReason.TRANSPORT_CLOSE,
      message:
        'no request came for the new session within handshakeTimeout + pingInterval + pingTimeout of its OPEN',
    })
    Object.freeze(made.packet)
    neverCame = Object.freeze(made)
  }
  return neverCame
}

/**
 * A numbered packet from a snapshot or a tail, as its wire text, ready to send again; undefined
 * when it does not decode as a numbered packet with sequence number `seq`.
 */
function restored(text: string, seq: number): Outgoing | undefined {
  const decoded = decodeText(text, { maxPayload: Number.MAX_SAFE_INTEGER })
  if (!decoded.ok) return undefined
  const packet = decoded.packet
  const numbered =
    packet.type === PacketType.EVENT || packet.type === PacketType.REPLY || packet.type === PacketType.ERROR
  if (!numbered || packet.seq !== seq) return undefined
  return outgoing(packet)
}

/**
 * A packet kept for replay until the client's ACK: for a broadcast copy with no reply asked
 * (ackId 0), the broadcast's shared encoding itself; for a text packet of the session's own, its
 * text alone; else its encoding as it went out (binary, a long text kept as UTF-8, a copy that
 * asks a reply). A broadcast to a thousand sessions then keeps a thousand references to one
 * object, not a thousand copies; a packet of the session's own does not keep its packet object,
 * nor the application's values in it, alive until the ACK: kept past a young collection or two,
 * they would all be copied into the old generation. A shared copy's `seq` is its place in the
 * buffer; its text, or a text's Outgoing, is made again only when it is sent again.
 */
type Kept = Outgoing | PreparedEvent | string

/** What a kept packet counts for against the buffer limits: its text's length, and a bit more. */
const keptSize = (kept: Kept, seq: number) =>
  (typeof kept === 'string'
    ? kept.length
    : isPreparedEvent(kept)
      ? kept.textLength(seq, 0)
      : (kept.textLength ?? kept.text.length)) + KEPT_OVERHEAD

/** A kept packet's wire text, `seq` being its sequence number. */
const keptText = (kept: Kept, seq: number): string =>
  typeof kept === 'string' ? kept : isPreparedEvent(kept) ? kept.text(seq, 0) : kept.text

/** What an empty replay buffer holds; shared, so never written to (see `Session.#kept`). */
const NOTHING_KEPT: (Kept | undefined)[] = []

/** The smallest ring of kept packets; it doubles when full. */
const FIRST_RING = 8

/** A packet to send, or a kept one as it goes out again, with sequence number `seq`. */
const keptOutgoing = (kept: Kept, seq: number): Outgoing =>
  typeof kept === 'string'
    ? replayedText(kept)
    : isPreparedEvent(kept)
      ? preparedOutgoing(kept, seq, 0)
      : kept

const PING = outgoing({ type: PacketType.PING })
const MOVED = outgoing({ type: PacketType.MOVED })

/** Set by `Session` (its static block): how its heartbeat's timers reach the session. */
let heartbeat: {
  ping(session: Session): void
  checkPong(session: Session): void
  arrived(session: Session): void
  lastCall(session: Session): void
}

/**
 * How long after an attach to SSE or polling (ms) the session waits for the transport's first
 * GET: the OPEN's way to the client (handshakeTimeout), then the client's GET, which a browser
 * can hold in its queue of six connections per host until another tab's held poll is answered
 * (a pingInterval at most), and a pingTimeout more, as for any answer. docs/protocol.md
 * (Heartbeat, "The first GET") promises it to clients.
 */
export const firstGetWithin = (
  config: Pick<SessionConfig, 'handshakeTimeout' | 'pingInterval' | 'pingTimeout'>,
) => config.handshakeTimeout + config.pingInterval + config.pingTimeout

/** The heartbeat's delays, one `TimerQueue` each. */
interface HeartbeatQueues {
  /** pingInterval after an attach: PING. */
  first: TimerQueue<Session>
  /** pingTimeout after a PING: heard anything since? */
  check: TimerQueue<Session>
  /** The rest of pingInterval after a check: PING again. */
  again: TimerQueue<Session>
  /**
   * After an attach to a transport whose client must come back for the downstream (SSE,
   * polling), in place of `first`: pingInterval, then PING, and did its GET come? (see
   * `Session.#arrived`).
   */
  arrival: TimerQueue<Session>
  /**
   * The rest of `firstGetWithin` after the PING of `arrival`, for a transport whose GET had not
   * come: has it now? (see `Session.#lastCall`).
   */
  lastCall: TimerQueue<Session>
}

/** The heartbeat queues of the sessions of one config (one server), made on first use. */
const heartbeatQueues = new WeakMap<SessionConfig, HeartbeatQueues>()

function heartbeatQueuesOf(config: SessionConfig): HeartbeatQueues {
  let queues = heartbeatQueues.get(config)
  if (!queues) {
    const ping = (session: Session) => heartbeat.ping(session)
    // A PING sent late counts against the client's wait for it (pingInterval + pingTimeout).
    const late = (ms: number) => config.metrics.pingDelay(ms / 1000)
    queues = {
      first: new TimerQueue(config.pingInterval, ping, late),
      check: new TimerQueue(config.pingTimeout, (session) => heartbeat.checkPong(session)),
      again: new TimerQueue(Math.max(0, config.pingInterval - config.pingTimeout), ping, late),
      arrival: new TimerQueue(config.pingInterval, (session) => heartbeat.arrived(session), late),
      lastCall: new TimerQueue(firstGetWithin(config) - config.pingInterval, (session) =>
        heartbeat.lastCall(session),
      ),
    }
    heartbeatQueues.set(config, queues)
  }
  return queues
}

/** The books of a session that only a move between nodes uses (see `Session.#move`). */
interface MoveBooks {
  /** Frozen (handed off): where packets numbered after the snapshot go. */
  tail: ((text: string) => void) | undefined
  /** The last number sent to the client before the freeze (see `unfreeze`). */
  frozenAt: number
  /**
   * Restored, before the old node's tail is in: sends waiting for their numbers (which follow
   * the tail's). Undefined otherwise.
   */
  held: ((seq: number) => Outgoing)[] | undefined
  /**
   * Thawed after a move given up on, while its late write may still be claimed (see
   * `holdInbound`): what the client sends, in order, neither taken nor acknowledged yet.
   * Undefined otherwise.
   */
  inbound: IncomingMessage[] | undefined
  /** The bytes of `inbound`: past `maxBufferedBytes`, more is not kept (see `holdInbound`). */
  inboundBytes: number
  /** The highest `seq` in `inbound` (`#inSeq` while it holds no numbered packet). */
  inboundThrough: number
  /** Taken over from a node with a larger `maxPayload`: that one (see `largerLimitBefore`). */
  largerLimitBefore: number
}

const newMoveBooks = (): MoveBooks => ({
  tail: undefined,
  frozenAt: 0,
  held: undefined,
  inbound: undefined,
  inboundBytes: 0,
  inboundThrough: 0,
  largerLimitBefore: 0,
})

/**
 * The durable half of a connection: id, sequence numbers, the replay buffer, acks, heartbeat and
 * the recovery window. It outlives transports and swaps them without the application noticing
 * anything but a `transport` event. It never looks at which kind of transport it holds.
 *
 * ```
 *            attach              transport lost / ping timeout
 *   (new) ───────────▶ attached ─────────────────────────────▶ detached
 *                        ▲  │ attach (resume, upgrade:                │
 *                        │  │ old one gets MOVED)                     │ window passes
 *                        │  ▼                                         ▼
 *                        attached ◀──────── attach (resume) ──────  closed
 * ```
 *
 * Over SSE and polling an attach waits for the transport's first GET, which the heartbeat does
 * not give up on before it comes (see `#arrived`); none within `firstGetWithin` counts as the
 * transport lost, but for a new session no request at all came for, which ends (see `#lastCall`).
 *
 * A session is its own entry in the heartbeat's timer queues (`Timed`), and the owner its
 * transports report to: no object of their own per connection.
 */
export class Session extends Timed implements TransportOwner {
  static {
    heartbeat = {
      ping: (session) => session.#ping(),
      checkPong: (session) => session.#checkPong(),
      arrived: (session) => session.#arrived(),
      lastCall: (session) => session.#lastCall(),
    }
  }

  /** The session id: a bearer secret, never shown to other clients. */
  readonly sid: string
  /** The public socket id, sent in OPEN next to the sid; a resume keeps it. */
  readonly id: string
  /**
   * Taken over from a node with a larger `maxPayload` (the snapshot's), that one; 0 otherwise.
   * Its client may still send a POST within it, made before this node's OPEN told it the smaller
   * one: such a POST is refused (413) without ending the session, and the client, resuming,
   * refuses those packets itself (see `refuseTooLarge` in http/routes.ts). Kept in the move's
   * books, since only a takeover sets it; an ended session reads 0, where it no longer matters
   * (it only spares a live session from ending).
   */
  get largerLimitBefore(): number {
    return this.#move?.largerLimitBefore ?? 0
  }
  readonly #config: SessionConfig
  #owner: SessionOwner | null = null
  #state: SessionState = 'detached'
  #transport: Transport | null = null
  /**
   * The kind of the last transport attached (null before the first): a switch is counted
   * against it, and the owner hears of every attach after the first.
   */
  #lastTransport: TransportName | null = null
  /** The CLOSE the session ended with, once it has (see `endedWith`). */
  #endedWith: Outgoing<ClosePacket> | undefined

  #outSeq = 0
  #inSeq = 0
  /**
   * Numbered packets the client has not acknowledged, in order: `#keptCount` of them from
   * `#keptHead` on, in a ring (its length a power of two). Their numbers are consecutive, so
   * only the first is stored: no wrapper object per message. The ring stays from one ACK to the
   * next, so that a session in a stream of broadcasts makes no array per ACK (each would live
   * until the ACK, past a young collection); it is let go at the heartbeat's PING when empty,
   * so that an idle session keeps none. Without one it is the shared `NOTHING_KEPT`.
   */
  #kept: (Kept | undefined)[] = NOTHING_KEPT
  #keptHead = 0
  #keptCount = 0
  /** The `seq` of the first kept packet (when there is one). */
  #keptFrom = 1
  #keptBytes = 0
  /** A PING went to ask for the ACK (kept bytes passed a quarter of highWaterMark); none came yet. */
  #ackAsked = false

  #unacked = 0
  /** The bytes of the packets `#unacked` counts (as their lines came). */
  #unackedBytes = 0
  #ackTimer: NodeJS.Timeout | undefined
  /** Something came from the client since the last PING (a flag: no clock read per packet). */
  #heard = false
  /**
   * Attached to SSE or polling, whose first GET has not come yet: the transport carries nothing
   * to its client until then, so no PING can have reached it, and its ping timeout waits for
   * that GET (see `#arrived`).
   */
  #awaitingGet = false
  /**
   * The end of the recovery window of a session without a transport. Its verdict waits two turns
   * of the event loop (see `InputFirstTimer`): a resume that came while the server's thread
   * stalled past the window's end is read first, and resumes the session.
   */
  #recoveryTimer: InputFirstTimer | undefined
  /**
   * When the recovery window of a session without a transport ends (`performance.now()`):
   * set as it detaches, or as its transport goes with a handoff. A freeze keeps it, so that a
   * node that adopts the session (see `recoveryLeft`) keeps its client's deadline, not a new one;
   * so does a thaw, for the session that stays here (see `#detachThawed`).
   */
  #recoveryEnds: number | undefined
  /** Adopted without its client (see `awaitResume`): true until a transport attaches. */
  #adopted = false
  /** A gap in the client's numbers, open, and its grace (see `#lostBefore`). */
  #gap: OpenGap | undefined
  /**
   * What only a move between nodes uses (a freeze, a restore, a move given up on), made at the
   * first: a session that never moves keeps none of it, 40 bytes less per idle session.
   */
  #move: MoveBooks | undefined
  /**
   * Set once the server closes without a move (see `refuseEvents`): events from the client are
   * no longer taken, and `answeredPast` is the highest `seq` of an answer taken past one refused
   * (0 for none). Not move books (no move is made), but as rare: one field for both, made then.
   */
  #refusing: { answeredPast: number } | undefined

  /**
   * A new session; or, with `books`, one another node handed off, taken over here: same ids,
   * same numbers, the same packets kept for the client. A restored session holds what is sent
   * to it until `release` brings the old node's tail.
   */
  constructor(config: SessionConfig, books?: SessionBooks) {
    super()
    this.#config = config
    if (!books) {
      this.sid = nanoid()
      this.id = nanoid()
      return
    }
    this.sid = books.sid
    this.id = books.id
    this.#move = newMoveBooks()
    // Any other value (an adapter's, or a store's garbled one) tells nothing: the limit here holds.
    const before = books.maxPayload
    if (Number.isSafeInteger(before) && (before as number) > config.maxPayload)
      this.#move.largerLimitBefore = before as number
    this.#inSeq = books.inSeq
    this.#outSeq = books.outSeq - books.kept.length
    this.#move.held = []
    for (const text of books.kept) {
      const out = restored(text, this.#outSeq + 1)
      if (!out)
        throw new ParleyError(ErrorCode.INVALID_PACKET, 'a packet of the snapshot does not follow in order')
      this.#keep(this.#outSeq + 1, out)
    }
  }

  /** Sets who hears about messages, transport changes and the end. */
  setOwner(owner: SessionOwner): void {
    this.#owner = owner
  }

  get state(): SessionState {
    return this.#state
  }

  /**
   * The CLOSE the session ended with (undefined until it ends): the answer to a handshake whose
   * new session the application ended before its OPEN, however soon the server's table of
   * ended sessions forgets it (see `ParleyServer`).
   */
  get endedWith(): Outgoing<ClosePacket> | undefined {
    return this.#endedWith
  }

  /** The attached transport, or null while detached (and after the end). */
  get transport(): Transport | null {
    return this.#transport
  }

  /** True while a restored session waits for the old node's tail (see `release`). */
  get restoring(): boolean {
    return this.#move?.held !== undefined
  }

  /** Outgoing bytes kept for replay (not yet acknowledged by the client). */
  get keptBytes(): number {
    return this.#keptBytes
  }

  /**
   * What this session holds for its client: the larger of the bytes kept for replay and the
   * bytes queued in the transport. The soft (`highWaterMark`) and hard (`maxBufferedBytes`)
   * limits are both checked against it.
   */
  get bufferedAmount(): number {
    return Math.max(this.#keptBytes, this.#transport?.bufferedAmount ?? 0)
  }

  /**
   * True for a new session over SSE or polling whose client has sent no request since its OPEN
   * (see `#lastCall`): it may have opened another session meanwhile, its OPEN lost on the way.
   */
  get awaitingClient(): boolean {
    return (this.#state === 'attached' || this.#state === 'frozen') && !this.#heard && this.#inArrival()
  }

  /** True while the session's first deadline is its transport's first GET (see `#arrived`). */
  #inArrival(): boolean {
    const queues = heartbeatQueuesOf(this.#config)
    return this.queue !== null && (this.queue === queues.arrival || this.queue === queues.lastCall)
  }

  /**
   * Attaches a transport: a new session's first, a resume, or a switch. The previous transport
   * (if any) gets MOVED and is closed; the client's `ack` trims the replay buffer; OPEN goes out,
   * then every packet the client has not acknowledged, in order.
   */
  attach(transport: Transport, clientAck: number, recovered: boolean): void {
    if (this.#state === 'closed') throw new ParleyError(ErrorCode.UNKNOWN_SESSION, 'the session has ended')
    if (this.#state === 'frozen')
      throw new ParleyError(ErrorCode.SERVER_SHUTTING_DOWN, 'the session is handed off')
    const before = this.#transport
    if (before) {
      // A WebSocket is replaced only by its client's resume on another transport: the client has
      // left it. Closed gracefully, it would hold what the client never read for ws's close
      // timeout (30 s), and a client that resumed in a loop without reading would pile those up.
      const cut = before.name === 'websocket' && before.bufferedAmount >= UNREAD_BYTES
      before.bind(null)
      before.send(MOVED)
      before.close(cut ? 'overflow' : 'normal')
      if (before.lingering) this.#config.linger(this.sid, before)
    }
    this.#recoveryTimer?.clear()
    this.#recoveryTimer = undefined
    this.#recoveryEnds = undefined
    this.#adopted = false
    this.#transport = transport
    this.#state = 'attached'
    transport.bind(this)
    // A PING that asked for the ACK went on the transport before, if any: ask afresh.
    this.#ackAsked = false
    this.#trim(clientAck)
    const open = outgoing({
      type: PacketType.OPEN,
      sid: this.sid,
      id: this.id,
      pingInterval: this.#config.pingInterval,
      pingTimeout: this.#config.pingTimeout,
      maxPayload: this.#config.maxPayload,
      transports: this.#config.transports,
      recovered,
      ack: this.#inSeq,
    })
    transport.handshake(open)
    // OPEN carried our ack.
    this.#unacked = 0
    this.#unackedBytes = 0
    clearTimeout(this.#ackTimer)
    this.#ackTimer = undefined
    for (let i = 0; i < this.#keptCount; i++) {
      this.#write(transport, keptOutgoing(this.#keptAt(i), this.#keptFrom + i), this.#keptFrom + i)
    }
    const last = this.#lastTransport
    this.#awaitingGet = transport.downstreamFollows
    // A new session's client over SSE or polling proves it came by its first request (its OPEN,
    // the answer to the handshake POST, can be lost by a proxy after the server took the HELLO);
    // a resume's client knew the session already.
    this.#heard = !this.#awaitingGet || last !== null || recovered
    if (this.#awaitingGet) heartbeatQueuesOf(this.#config).arrival.add(this)
    else this.#startHeartbeat()
    if (last !== null && last !== transport.name) this.#config.metrics.transportSwitch(last, transport.name)
    this.#lastTransport = transport.name
    if (last !== null) this.#owner?.sessionTransportChanged(transport.name, before?.name ?? null)
    this.#checkBuffers()
  }

  /**
   * Sends a numbered packet: kept until the client acknowledges it, replayed after every attach.
   * `make` gets the sequence number. Throws, and uses no number, when the packet cannot be
   * encoded (PARLEY_UNSERIALIZABLE) or is one the client must refuse (PARLEY_PAYLOAD_TOO_LARGE,
   * PARLEY_TOO_DEEP, PARLEY_FORBIDDEN_KEY): kept, it would be replayed, and refused, on every
   * resume. Returns false once the session has ended.
   *
   * Restored, the packet waits for its number (see `release`), checked here under the number it
   * would take now: within a few bytes of `maxPayload`, the larger one it gets may not fit, and
   * it is dropped then. `dropped` hears it, with the error (PARLEY_PAYLOAD_TOO_LARGE): a question
   * asked with it would otherwise await a reply that cannot come.
   *
   * Each such error names the event it concerns (see `namedAfterEvent`): an EVENT's own, or
   * `replyTo`, the event a REPLY or an ERROR answers (`reply to "quote": ...`).
   */
  sendNumbered(
    make: (seq: number) => NumberedPacket,
    dropped?: (error: ParleyError<string>) => void,
    replyTo?: string,
  ): boolean {
    if (this.#state === 'closed') return false
    const seq = this.#outSeq + 1
    const out = this.#checked(make(seq), replyTo)
    const held = this.#move?.held
    if (held)
      held.push((later) => {
        try {
          return this.#checked(make(later), replyTo)
        } catch (error) {
          // The encoder throws only coded errors; anything else is reported as what it would be.
          dropped?.(
            error instanceof ParleyError
              ? error
              : new ParleyError(ErrorCode.UNSERIALIZABLE, 'payload cannot be encoded', { cause: error }),
          )
          throw error
        }
      })
    else this.#keep(seq, out)
    return true
  }

  /**
   * Like `sendNumbered`, for a packet already encoded (a broadcast prepares its encoding once
   * and splices each session's sequence number in).
   */
  sendEncoded(encode: (seq: number) => Outgoing): boolean {
    if (this.#state === 'closed') return false
    const held = this.#move?.held
    if (held) held.push(encode)
    else this.#keep(this.#outSeq + 1, encode(this.#outSeq + 1))
    return true
  }

  /**
   * Sends a broadcast's copy: the prepared event with this session's next sequence number and
   * `ackId`. The common case (no reply asked) keeps a reference to the shared encoding only;
   * a copy with an ack id is kept as its own text.
   */
  sendPrepared(prepared: PreparedEvent, ackId: number): boolean {
    if (this.#state === 'closed') return false
    const held = this.#move?.held
    if (held) held.push((seq) => preparedOutgoing(prepared, seq, ackId))
    else if (ackId !== 0) this.#keep(this.#outSeq + 1, preparedOutgoing(prepared, this.#outSeq + 1, ackId))
    else this.#keep(this.#outSeq + 1, prepared)
    return true
  }

  /**
   * Numbers, keeps and sends one encoded packet (`seq` is used only once it encoded). Frozen,
   * it goes to the tail instead of the transport.
   */
  #keep(seq: number, out: Outgoing | PreparedEvent): void {
    const tail = this.#move?.tail
    let kept: Kept = out
    if (!isPreparedEvent(out) && !out.binary && out.split === undefined) {
      // A long text of this session's own, on its way to a transport that writes bytes, is kept
      // and sent as its UTF-8 bytes (see `keptAsUtf8`); any other is kept as its text.
      if (this.#transport?.writesBytes && !tail && out.text.length >= KEEP_AS_UTF8_FROM) {
        out = keptAsUtf8(out.text)
        kept = out
      } else kept = out.text
    }
    this.#outSeq = seq
    if (this.#keptCount === 0) this.#keptFrom = seq
    if (this.#keptCount === this.#kept.length) this.#growKept()
    this.#kept[(this.#keptHead + this.#keptCount) & (this.#kept.length - 1)] = kept
    this.#keptCount++
    this.#keptBytes += keptSize(kept, seq)
    if (tail) tail(keptText(kept, seq))
    else if (this.#transport) {
      // What goes now is the packet as it came: only what is kept is pared down.
      this.#write(this.#transport, keptOutgoing(out, seq), seq)
      // A client may hold its ACK for seconds (five over SSE, where an ACK is a POST): past a
      // quarter of highWaterMark, where volatile events would start to drop, a PING asks for it
      // now (docs/protocol.md, delivery). One until an ACK comes.
      if (this.#keptBytes >= this.#config.highWaterMark / 4 && !this.#ackAsked) {
        this.#ackAsked = true
        this.#transport.send(PING)
      }
    }
    this.#checkBuffers()
  }

  /** Hands an application packet (EVENT, REPLY, ERROR) to `transport`, counted; `seq` 0 when volatile. */
  #write(transport: Transport, out: Outgoing, seq = 0): void {
    this.#config.metrics.message('out', transport.name, out.textLength ?? out.text.length)
    transport.send(out, seq)
  }

  /**
   * Sends an unnumbered event now, or drops it when the transport cannot take it. An event
   * packet is checked as in `sendNumbered` (and throws) before anything else, so that an emit
   * fails the same way whether or not it would have been dropped; a prepared one (a broadcast)
   * was checked where it was made.
   */
  sendVolatile(packet: EventPacket | (() => Outgoing)): boolean {
    const out = typeof packet === 'function' ? undefined : this.#checked({ ...packet, seq: 0 })
    const transport = this.#transport
    if (this.#state !== 'attached' || !transport?.open) return false
    if (this.bufferedAmount >= this.#config.highWaterMark) return false
    this.#write(transport, out ?? (packet as () => Outgoing)())
    this.#checkBuffers()
    return true
  }

  /**
   * The packet encoded, when a conforming client would accept it; else throws why not, naming
   * the event it concerns: an EVENT's own name, or `replyTo` for an answer.
   */
  #checked<P extends Packet>(packet: P, replyTo?: string): Outgoing<P> {
    try {
      const out = outgoing(packet)
      const problem = checkEncoded(out.text, this.#config.maxPayload)
      if (problem) throw problem
      return out
    } catch (error) {
      throw packet.type === PacketType.EVENT
        ? namedAfterEvent(error, packet.name)
        : namedAfterEvent(error, replyTo, true)
    }
  }

  /**
   * Stops reading from the client, at once, and returns the session's books as they stand: the
   * first half of a handoff. What the client sends from now on is not processed here (it is
   * not acknowledged either, so the client sends it again to the node that takes over), but its
   * goodbye, which ends the session here (see `goodbyeWhileFrozen`). What
   * is still sent to the client is numbered as before and goes to `tail`, not to the transport.
   * The transport stays open for `handOff`'s CLOSE; `end` still works (the handoff failed).
   */
  freeze(tail: (text: string) => void): SessionBooks {
    if (this.#state === 'closed' || this.#state === 'frozen')
      throw new Error('parley: the session cannot freeze now')
    // Nothing more is read from the client, but its goodbye, which ends the session here (see
    // `goodbyeWhileFrozen`), even once `handOff` closed the transport.
    this.#transport?.bind(new FrozenGoodbye(this))
    this.#state = 'frozen'
    this.#move ??= newMoveBooks()
    this.#move.tail = tail
    this.#move.frozenAt = this.#outSeq
    clearTimeout(this.#ackTimer)
    this.#ackTimer = undefined
    // The heartbeat goes on (see `#ping`): a store slower than the client's patience would
    // otherwise have the client give up on a session that is about to be handed off. The window
    // of a client away does not end the session while it is frozen, but its verdict is kept: a
    // drain that finds it spent before the session is stored ends it with it (see
    // `endIfWindowSpent`); should the session thaw, that verdict runs again, for what is left
    // of the window (see `#detachThawed`).
    this.#recoveryTimer?.setAside()
    return {
      sid: this.sid,
      id: this.id,
      inSeq: this.#inSeq,
      outSeq: this.#outSeq,
      kept: Array.from({ length: this.#keptCount }, (_, i) => keptText(this.#keptAt(i), this.#keptFrom + i)),
    }
  }

  /**
   * The snapshot is stored: tells the client to resume elsewhere (CLOSE 'server handoff', with
   * `retryAfter`; MOVED when `switched`) and closes the transport. The session stays frozen, feeding its tail, until
   * another node takes it over (`moved`) or the drain ends.
   */
  handOff(retryAfter: number, switched = false): void {
    const transport = this.#transport
    if (this.#state !== 'frozen' || !transport) return
    this.#transport = null
    // The client's recovery window starts as its transport goes (see `recoveryLeft`).
    this.#recoveryEnds = performance.now() + this.#config.recoveryWindow
    // Switched: the client already resumed on another node (which takes the session over), so
    // this transport is an old one: MOVED, as for a transport switch, not a resume elsewhere.
    transport.send(
      switched
        ? MOVED
        : outgoing<ClosePacket>({
            type: PacketType.CLOSE,
            reason: CloseReason.SERVER_HANDOFF,
            message: defaultMessages[CloseReason.SERVER_HANDOFF],
            retryAfter,
          }),
    )
    transport.close('normal')
    if (transport.lingering) this.#config.linger(this.sid, transport)
  }

  /**
   * The client said goodbye while the session is frozen to be handed off: in a POST whose body
   * was still coming at the freeze, or one it made before it read the CLOSE 'server handoff'; on
   * a WebSocket, in a frame read after the freeze (see `FrozenGoodbye`), one that crossed the
   * CLOSE 'server handoff' included.
   * A client that said goodbye resumes nowhere, so no node would ever claim the snapshot (it would
   * wait, unclaimed, for its ttl, and the drain for the claim). The session ends here instead, as
   * on a goodbye it read ('client disconnect', nothing sent), which withdraws the snapshot and
   * ends the drain's wait for it. What came before the CLOSE is not taken: the freeze read
   * nothing more from the client, and the snapshot, handed on already, holds the books as they
   * stood then. False, nothing done, when the session is not frozen or `packets` hold no CLOSE.
   */
  goodbyeWhileFrozen(packets: readonly Packet[]): boolean {
    if (this.#state !== 'frozen' || !packets.some((packet) => packet.type === PacketType.CLOSE)) return false
    this.end(CloseReason.CLIENT_DISCONNECT, { notify: false })
    return true
  }

  /**
   * The snapshot could not be stored (before `handOff`): the session goes on here. What was
   * numbered since the freeze is kept for the client like everything else (frozen sends are
   * kept too, see `#keep`); the transport, read no more since the freeze, is closed, and the
   * session waits for the client's resume, which replays all of it. A client away at the freeze
   * keeps what was left of its window (see `#detachThawed`).
   */
  thaw(): void {
    if (this.#state !== 'frozen') return
    if (this.#move) this.#move.tail = undefined
    this.#detachThawed()
  }

  /**
   * The snapshot could not be stored, and the session finishes here before it ends (a drain: see
   * `ServerSocket.stayToFinish`): back on its transport, whose client was told nothing, taking no
   * new event (see `refuseEvents`); what was numbered since the freeze (kept, and into the tail
   * only) goes on the transport now, in order. A transport lost meanwhile (unread since the
   * freeze, its loss reported to nobody) leaves the session detached, awaiting a resume; so
   * does a client away at the freeze, within what was left of its window (see `#detachThawed`).
   */
  unfreeze(): void {
    if (this.#state !== 'frozen') return
    const frozenAt = this.#move?.frozenAt ?? 0
    if (this.#move) this.#move.tail = undefined
    this.refuseEvents()
    const transport = this.#transport
    if (!transport?.open) {
      this.#detachThawed()
      return
    }
    this.#state = 'attached'
    transport.bind(this)
    const last = this.#keptFrom + this.#keptCount - 1
    for (let seq = Math.max(frozenAt + 1, this.#keptFrom); seq <= last; seq++) {
      this.#write(transport, keptOutgoing(this.#keptAt(seq - this.#keptFrom), seq), seq)
    }
    // The freeze stopped the ACK owed; `end` sends it too, but the session may last a while.
    if (this.#unacked > 0) this.#ackLater()
    this.#checkBuffers()
  }

  /**
   * Another node took the session over: it ends here without a word to the client (who is
   * with that node now); the owner hears 'server handoff'.
   */
  moved(): void {
    if (this.#state === 'closed') return
    this.#state = 'closed'
    if (this.#move) {
      this.#move.tail = undefined
      this.#move.inbound = undefined
    }
    // Its heartbeat ran on while it was frozen.
    this.leaveQueue()
    const transport = this.#transport
    this.#transport = null
    if (transport) transport.close('normal')
    this.#dropKept()
    this.#keptBytes = 0
    this.#config.metrics.disconnect(CloseReason.SERVER_HANDOFF)
    this.#owner?.sessionEnded(CloseReason.SERVER_HANDOFF)
  }

  /**
   * Restored: the old node's tail is in. Its packets (numbered after the snapshot, consecutive)
   * are kept, then what was sent here meanwhile is numbered after them, and after `clientAck`,
   * the highest number the resuming client has from us, when that is further (see `#skipTo`).
   * Returns how many numbers the client had past the old node's record (0 as a rule); undefined,
   * keeping nothing of the tail, when the tail does not follow the snapshot's numbers: it is then
   * dropped rather than risk a gap or a duplicate, and the caller gives the session up.
   */
  release(tail: readonly string[], clientAck: number): number | undefined {
    const move = this.#move
    const held = move?.held
    if (!move || !held) return 0
    move.held = undefined
    for (const text of tail) {
      const out = restored(text, this.#outSeq + 1)
      if (!out) return undefined
      this.#keep(this.#outSeq + 1, out)
    }
    const unrecorded = this.#skipTo(clientAck)
    for (const make of held) {
      try {
        this.#keep(this.#outSeq + 1, make(this.#outSeq + 1))
      } catch (err) {
        this.#config.warn(
          'an event sent while the session was taken over no longer fits maxPayload under its number: dropped',
          err,
        )
      }
    }
    return unrecorded
  }

  /**
   * The client has packets numbered past everything the old node recorded: that node sent them
   * after its snapshot, and no tail holds them (its move was given up on, the session went on
   * there, and the snapshot was claimed before its take-back). The client has them, so they are
   * delivered; numbered from the snapshot, what this node sends would reuse their numbers and
   * the client would drop it as duplicates. So numbering goes on after the client's, and all
   * that is kept (numbered before it) counts as acknowledged. Returns how many numbers it skips.
   *
   * Past MOST_SKIPPED the client lies (no node sends that many packets in the moment a move
   * takes): its ack is then taken as one node takes an ack past what it sent, which trims what
   * is kept and leaves the numbering as it is. Skipped to, a lie such as 2^53 - 1 would number
   * every packet after it with an integer that is not safe, which no client can read.
   */
  #skipTo(clientAck: number): number {
    const skipped = clientAck - this.#outSeq
    if (skipped <= 0 || skipped > MOST_SKIPPED || clientAck > Number.MAX_SAFE_INTEGER - MOST_SKIPPED) return 0
    this.#trim(clientAck)
    this.#outSeq = clientAck
    this.#keptFrom = clientAck + 1
    return skipped
  }

  /**
   * Restored, but the client went away while it was: the session waits for a resume within the
   * recovery window, as after a lost transport; within `left` ms for a session adopted without
   * its client (what was left of its client's window on the node it came from, see
   * `recoveryLeft`), `adopted` (see `adoptedAway`).
   */
  awaitResume(left: number = this.#config.recoveryWindow, adopted = false): void {
    if (this.#state !== 'detached' || this.#transport) return
    this.#adopted = adopted
    this.#recoveryTimer?.clear()
    this.#recoveryEnds = performance.now() + left
    this.#recoveryTimer = new InputFirstTimer(left, () => this.end(CloseReason.TRANSPORT_CLOSE))
  }

  /**
   * True while the session, adopted from a draining node without its client (see
   * `awaitResume`), waits for that client's first resume here: a request of the client's old
   * transport is answered as the draining node would have (see routes.ts).
   */
  get adoptedAway(): boolean {
    return this.#adopted && this.#state === 'detached'
  }

  /**
   * How long the client of a session without a transport (detached, or frozen once its
   * transport went) has left of its recovery window, in ms (0 when none): what a node that adopts
   * the session waits for its resume (see `awaitResume`), so that a session moved from node to
   * node without its client still ends when its client's window does. The whole window for one
   * whose transport has not gone yet.
   */
  recoveryLeft(): number {
    if (this.#recoveryEnds === undefined) return this.#config.recoveryWindow
    return Math.max(0, Math.round(this.#recoveryEnds - performance.now()))
  }

  /**
   * Ends the session now, as its recovery window's end would (with the same reason), when its
   * client is away and that window is spent, its end due but not run yet (the thread stalled,
   * or the verdict's turns under way), or set aside by a freeze (the client away at the freeze,
   * the session not stored yet); returns whether it did. A drain asks it before it hands a
   * session off, and again once it is frozen, for a window spent meanwhile, or while the store
   * waited: stored for what is left of that window, nothing, the session would wait for a claim
   * that cannot come, and be lost with no end said anywhere.
   */
  endIfWindowSpent(): boolean {
    const timer = this.#recoveryTimer
    const away = this.#state === 'detached' || (this.#state === 'frozen' && this.#transport === null)
    if (!away || !timer || this.recoveryLeft() > 0) return false
    timer.fireNow()
    return this.#state === 'closed'
  }

  /**
   * A new session the handshake turned away before it opened: it ends without a word (no
   * transport was attached, no client knows its id, and it never counted as a session).
   */
  discard(): void {
    if (this.#state === 'closed') return
    this.#state = 'closed'
    clearTimeout(this.#ackTimer)
    this.#recoveryTimer?.clear()
    this.leaveQueue()
    this.#dropKept()
    this.#keptBytes = 0
  }

  /** Ends the session: CLOSE to the client (when possible), transport closed, owner told. */
  end(reason: CloseReason, options: EndOptions = {}): void {
    const { message, retryAfter } = options
    const close =
      message === undefined && retryAfter === undefined
        ? defaultClose(reason)
        : outgoing<ClosePacket>({
            type: PacketType.CLOSE,
            reason,
            message: message ?? defaultMessages[reason],
            ...(retryAfter === undefined ? {} : { retryAfter }),
          })
    this.#endWith(close, options)
  }

  /** `end`, with its CLOSE made. */
  #endWith(close: Outgoing<ClosePacket>, options: EndOptions): void {
    if (this.#state === 'closed') return
    const reason = close.packet.reason
    this.#state = 'closed'
    this.#move = undefined
    clearTimeout(this.#ackTimer)
    this.leaveQueue()
    this.#recoveryTimer?.clear()
    this.#dropGap()
    const transport = this.#transport
    this.#transport = null
    if (transport) {
      transport.bind(null)
      if (options.notify !== false) {
        // The ACK owed goes first: what the application handled in the last ACK_DELAY ms is
        // then not in the client's ledger when it starts its next session, and is not sent
        // (and handled) again there. It covers only what was taken (`#inSeq`): what was refused
        // or dropped, as at shutdown (`refuseEvents`), stays with the client.
        if (this.#unacked > 0) transport.send(outgoing({ type: PacketType.ACK, ack: this.#inSeq }))
        transport.send(close)
      }
      transport.close(options.kind ?? 'normal')
      if (transport.lingering) this.#config.linger(this.sid, transport)
    }
    this.#dropKept()
    this.#keptBytes = 0
    this.#endedWith = close
    this.#config.ended(this.sid, close, this.#inSeq)
    // Only a session that opened counts as one that ended: one its handshake middleware ended
    // never counted in parley_handshakes_total either.
    if (this.#lastTransport !== null) this.#config.metrics.disconnect(reason)
    this.#owner?.sessionEnded(reason)
  }

  /**
   * The client asked for `transport`'s downstream (a GET): it has the OPEN. Counts only for the
   * transport's first GET (see `#arrived`): after it, the heartbeat takes packets alone as signs
   * of life. A first GET that comes after the first PING brings it to the client: the PING's
   * pingTimeout runs from now.
   */
  transportDownstream(transport: Transport): void {
    if (transport !== this.#transport || !this.#awaitingGet) return
    this.#awaitingGet = false
    const queues = heartbeatQueuesOf(this.#config)
    if (this.queue === queues.lastCall) {
      this.#heard = false
      queues.check.add(this)
    } else this.#heard = true
  }

  /** A packet from `transport`; ignored unless it is the attached one. */
  transportPacket(transport: Transport, packet: Packet, size: number): void {
    if (transport !== this.#transport) return
    this.#heard = true
    switch (packet.type) {
      case PacketType.PONG:
        this.#checkBuffers()
        return
      case PacketType.ACK:
        this.#trim(packet.ack)
        return
      case PacketType.CLOSE:
        this.end(CloseReason.CLIENT_DISCONNECT, { notify: false })
        return
      case PacketType.EVENT:
      case PacketType.REPLY:
      case PacketType.ERROR:
        if (this.#move?.inbound) {
          this.#holdPacket(this.#move, this.#move.inbound, packet, transport.name, size)
          return
        }
        if (this.#refusing && packet.type === PacketType.EVENT) return
        if (packet.seq > 0) {
          // Duplicates come from replays after a switch: dropped. A gap: dropped too, and the
          // client is made to resume unless it fills it soon (see `#lostBefore`). But past an event refused at shutdown,
          // where the order was broken on purpose (see `refuseEvents`): an answer is taken.
          if (packet.seq !== this.#inSeq + 1) {
            if (this.#refusing) {
              if (packet.seq > this.#inSeq && packet.seq > this.#refusing.answeredPast)
                this.#takeAnswerPast(this.#refusing, packet, transport.name, size)
            } else if (packet.seq > this.#inSeq + 1) this.#lostBefore(transport, packet.seq)
            return
          }
          this.#inSeq = packet.seq
          this.#scheduleAck(size)
          if (this.#gap && this.#inSeq >= this.#gap.seq) this.#dropGap()
        }
        this.#config.metrics.message('in', transport.name, size)
        this.#owner?.sessionMessage(packet)
        // The ACKs (and PINGs) the server sends wait in the transport like anything else: a
        // client that keeps talking and never reads would grow them for the session's life.
        this.#checkBuffers()
        return
      default:
        this.transportInvalid(
          transport,
          new ParleyError(ErrorCode.INVALID_PACKET, `a client may not send packets of type ${packet.type}`),
        )
    }
  }

  /**
   * A packet past a gap on the attached transport: what came before it was lost on the way, and
   * its client need not know. Over HTTP a POST can be answered 204 and used by no one: the old
   * node of a handed-off session, which still held it frozen (it had not heard the claim yet),
   * answers so a POST its client sent there after it had already resumed here. That client took
   * the POST for delivered, and would go on sending what this session drops, for good, while
   * its stream and the heartbeat stayed alive. So the transport is let go, as a lost one is: the
   * client resumes, and sends again, in order, everything past the ACK this session owes it.
   * Not at once: a gap that the packets sent again fill within GAP_GRACE_MS (a POST from before a
   * resume, arriving after it) keeps the transport.
   */
  #lostBefore(transport: Transport, seq: number): void {
    const open = this.#gap
    if (open?.transport === transport) {
      open.seq = Math.max(open.seq, seq)
      return
    }
    // A gap left open on a transport since replaced decides nothing for this one: its grace
    // would let go of no transport, and this gap would have none.
    open?.grace.clear()
    // Its verdict waits two turns of the event loop (see `InputFirstTimer`): the packets that
    // fill the gap, arrived while the server's thread stalled past the grace, are read first,
    // rather than the transport let go and their POST refused for a gap they closed in time.
    const gap: OpenGap = {
      seq,
      transport,
      grace: new InputFirstTimer(GAP_GRACE_MS, () => this.#graceOver(gap), true),
    }
    this.#gap = gap
  }

  /**
   * The gap is filled (or the session ended): its grace is over. Left to run, it would cut short
   * the grace of the next gap, which would join it, and let go of the transport while that gap's
   * packets were still on their way: each gap has a grace of its own.
   */
  #dropGap(): void {
    this.#gap?.grace.clear()
    this.#gap = undefined
  }

  /** The grace of `gap` ran out: its transport is let go unless the gap was filled meanwhile. */
  #graceOver(gap: OpenGap): void {
    if (this.#gap !== gap) return
    this.#gap = undefined
    if (this.#transport === gap.transport && this.#inSeq < gap.seq) this.#detach(CloseReason.TRANSPORT_CLOSE)
  }

  /**
   * A move of this session was given up on (`thaw`), and its late write may still be claimed by
   * another node, which would take the session over from that snapshot: whatever the client sends
   * from now on is held, neither handed to the application nor acknowledged, until
   * `releaseInbound` (the take-back kept the session here) or the end of the session here (the
   * claim stood). The client keeps what is not acknowledged and sends it again to the claimer,
   * so that the application of exactly one node handles it. Packets past `maxBufferedBytes` are
   * not held either: the client sends them again on its next resume.
   */
  holdInbound(): void {
    if (this.#state === 'closed') return
    this.#move ??= newMoveBooks()
    this.#move.inbound ??= []
    this.#move.inboundThrough = this.#inSeq
  }

  /**
   * The server is closing without handing this session off: from now on an EVENT from the client
   * is dropped, neither taken nor acknowledged, so that its client keeps it and sends it again in
   * its next session, to whichever server takes it. Replies and errors are still taken, since a
   * middleware finishing an event before the close may await one: in order before the first such
   * event, and after it too, each once, but not acknowledged (see `#takeAnswerPast`). What
   * `holdInbound` held is dropped too (not acknowledged either).
   */
  refuseEvents(): void {
    this.#refusing ??= { answeredPast: 0 }
    if (!this.#move) return
    this.#move.inbound = undefined
    this.#move.inboundBytes = 0
  }

  /**
   * A REPLY or an ERROR numbered past an event refused at shutdown: handed to the owner (the
   * middleware finishing an event may await it, and would wait until the close's bound), once
   * (its `seq` past those taken so, as a transport brings them in order; a replay repeats them),
   * and not acknowledged: the ACK counts in order, and the refused event before it is still the
   * client's. The client drops the answer with its session (a new one takes no answer to the old
   * one's requests), and a resume of this one replays it, dropped here then.
   */
  #takeAnswerPast(
    refusing: { answeredPast: number },
    packet: IncomingMessage,
    transport: TransportName,
    size: number,
  ): void {
    if (packet.type === PacketType.EVENT) return
    refusing.answeredPast = packet.seq
    this.#config.metrics.message('in', transport, size)
    this.#owner?.sessionMessage(packet)
  }

  /** The take-back of a given-up move kept the session here: what `holdInbound` held is taken, in order. */
  releaseInbound(): void {
    const move = this.#move
    const held = move?.inbound
    if (!move || !held) return
    // Their sizes count together, once: what the ACK that covers them may wait for.
    this.#unackedBytes += move.inboundBytes
    move.inbound = undefined
    move.inboundBytes = 0
    for (const packet of held) {
      if (this.#state === 'closed') return
      if (packet.seq > 0) {
        this.#inSeq = packet.seq
        this.#scheduleAck(0)
      }
      this.#owner?.sessionMessage(packet)
    }
    if (this.#gap && this.#inSeq >= this.#gap.seq) this.#dropGap()
    this.#checkBuffers()
  }

  #holdPacket(
    move: MoveBooks,
    inbound: IncomingMessage[],
    packet: IncomingMessage,
    transport: TransportName,
    size: number,
  ): void {
    // As when taken: a replay's duplicates and anything past a gap wait for a resume.
    if (packet.seq > 0 && packet.seq !== move.inboundThrough + 1) return
    if (move.inboundBytes + size > this.#config.maxBufferedBytes) return
    if (packet.seq > 0) move.inboundThrough = packet.seq
    move.inboundBytes += size
    inbound.push(packet)
    this.#config.metrics.message('in', transport, size)
  }

  /** Input from `transport` that does not decode: the session ends ('invalid packet'). */
  transportInvalid(transport: Transport, error: ParleyError): void {
    if (transport !== this.#transport) return
    this.#config.invalid(error)
    this.end(CloseReason.INVALID_PACKET, { message: `${error.code}: ${error.message}` })
  }

  /**
   * `transport` gave the client packets it never got (a polling answer or an SSE stream that went
   * to a GET the client had given up on): those still kept, from `after + 1` to `through`, go
   * again, in order.
   */
  transportMissed(transport: Transport, after: number, through: number): void {
    if (transport !== this.#transport) return
    const last = Math.min(through, this.#keptFrom + this.#keptCount - 1)
    for (let seq = Math.max(after + 1, this.#keptFrom); seq <= last; seq++) {
      this.#write(transport, keptOutgoing(this.#keptAt(seq - this.#keptFrom), seq), seq)
    }
  }

  /** `transport` is gone: the session waits for a resume, or ends when it cannot. */
  transportLost(transport: Transport, reason: TransportCloseReason): void {
    if (transport !== this.#transport) return
    if (reason === CloseReason.TRANSPORT_CLOSE) this.#detach(reason)
    else this.end(reason, { notify: false })
  }

  /**
   * Back from a freeze with no transport to go on with (`thaw`, `unfreeze`): detached, awaiting a
   * resume. A client away at the freeze keeps the end its window had (`#recoveryEnds`, counted
   * from when its transport went), and the verdict the freeze set aside, its reason with it:
   * given a whole new window, the session would be kept up to a window past what its client was
   * promised, and a resume past that end would find it, which no single node allows. A window
   * spent meanwhile gets its verdict in the timer's turns (a caller that must end such a session
   * at once asks `endIfWindowSpent` first). A client connected at the freeze (its transport let
   * go now, or lost unread meanwhile) starts its window now, as at any loss of a transport.
   */
  #detachThawed(): void {
    if (this.#transport || !this.#recoveryTimer?.resume(this.recoveryLeft())) {
      this.#detach(CloseReason.TRANSPORT_CLOSE)
      return
    }
    this.#state = 'detached'
  }

  /** The transport is gone (or, thawing, let go); wait for a resume within the recovery window. */
  #detach(reason: typeof CloseReason.PING_TIMEOUT | typeof CloseReason.TRANSPORT_CLOSE): void {
    if (this.#config.recoveryWindow === 0) {
      this.end(reason)
      return
    }
    const transport = this.#transport
    this.#transport = null
    this.#state = 'detached'
    this.#awaitingGet = false
    this.leaveQueue()
    clearTimeout(this.#ackTimer)
    this.#ackTimer = undefined
    if (transport) {
      transport.bind(null)
      transport.close('normal')
    }
    this.#recoveryEnds = performance.now() + this.#config.recoveryWindow
    this.#recoveryTimer = new InputFirstTimer(this.#config.recoveryWindow, () => this.end(reason))
    // A session that thaws detached had no transport to lose: nothing changed for its owner.
    if (transport) this.#owner?.sessionTransportChanged(null, transport.name)
  }

  #trim(ack: number): void {
    const count = Math.min(this.#keptCount, ack - this.#keptFrom + 1)
    if (count <= 0) return
    this.#ackAsked = false
    const mask = this.#kept.length - 1
    for (let i = 0; i < count; i++) {
      const at = (this.#keptHead + i) & mask
      this.#keptBytes -= keptSize(this.#kept[at]!, this.#keptFrom + i)
      this.#kept[at] = undefined
    }
    this.#keptHead = (this.#keptHead + count) & mask
    this.#keptCount -= count
    this.#keptFrom += count
    if (this.#keptCount === 0) this.#keptHead = 0
  }

  /** The `i`th kept packet from the oldest. */
  #keptAt(i: number): Kept {
    return this.#kept[(this.#keptHead + i) & (this.#kept.length - 1)]!
  }

  /** A ring twice as long (or the first), the kept packets moved to its start in order. */
  #growKept(): void {
    const ring = new Array<Kept | undefined>(Math.max(FIRST_RING, this.#kept.length * 2))
    for (let i = 0; i < this.#keptCount; i++) ring[i] = this.#keptAt(i)
    this.#kept = ring
    this.#keptHead = 0
  }

  #dropKept(): void {
    this.#kept = NOTHING_KEPT
    this.#keptHead = 0
    this.#keptCount = 0
  }

  #scheduleAck(size: number): void {
    this.#unacked++
    this.#unackedBytes += size
    if (this.#unacked >= ACK_BATCH) this.#sendAck(false)
    else this.#ackLater()
  }

  #ackLater(): void {
    this.#ackTimer ??= setTimeout(() => {
      this.#ackTimer = undefined
      this.#sendAck(true)
    }, ACK_DELAY)
  }

  /** Sends the ACK owed; `timed` when its timer ran out, so it may wait for company. */
  #sendAck(timed: boolean): void {
    const transport = this.#transport
    if (transport && transport.bufferedAmount >= UNREAD_BYTES) {
      this.#ackLater()
      return
    }
    clearTimeout(this.#ackTimer)
    this.#ackTimer = undefined
    const few = this.#unackedBytes < ACK_WITH_NEXT_BYTES
    this.#unacked = 0
    this.#unackedBytes = 0
    if (timed && few && transport?.ackWithNext) transport.ackWithNext(this.#inSeq)
    else transport?.send(outgoing({ type: PacketType.ACK, ack: this.#inSeq }))
  }

  // PING after pingInterval, then a check after pingTimeout, then PING again once the rest of
  // pingInterval has passed. The timers are the server's, shared by every session.
  #startHeartbeat(): void {
    heartbeatQueuesOf(this.#config).first.add(this)
  }

  #ping(): void {
    const transport = this.#transport
    if (!transport) return
    // Quiet since the last ACK: the ring goes (see `#kept`).
    if (this.#keptCount === 0) this.#kept = NOTHING_KEPT
    this.#heard = false
    transport.send(PING)
    // Frozen, nothing the client sends is read, its PONG neither: PINGs keep it patient until
    // the handoff's CLOSE, a pingInterval apart, and nothing is checked.
    const queues = heartbeatQueuesOf(this.#config)
    if (this.#state === 'frozen') queues.first.add(this)
    else queues.check.add(this)
  }

  /**
   * pingInterval after an attach to SSE or polling (a new session's OPEN, a resume, a step
   * down): its first PING, as after any attach. Its GET came: the heartbeat goes on as after any
   * attach. Not yet (an OPEN slow to reach its client, a GET a browser holds back): the PING waits
   * in the transport, and its pingTimeout runs from the GET that takes it (see
   * `transportDownstream`), up to `firstGetWithin` after the attach (see `#lastCall`). Until then
   * the transport has carried nothing to its client, whose heartbeat is not late; counted from
   * the HELLO, a GET later than pingInterval + pingTimeout would find the session detached (a
   * resume's: 400 PARLEY_TRANSPORT_MISMATCH) or ended (a new one), its client cut.
   */
  #arrived(): void {
    if (!this.#awaitingGet || this.#state === 'frozen') {
      this.#ping()
      return
    }
    this.#transport?.send(PING)
    heartbeatQueuesOf(this.#config).lastCall.add(this)
  }

  /**
   * `firstGetWithin` after an attach to SSE or polling, and still no GET. A new session whose
   * client sent nothing at all ends ('transport close'), what waits for the client dropped but
   * the CLOSE, kept for a GET or a resume that comes after all: its OPEN was lost, and its client
   * (which says HELLO again and opens another session) would have the application see two
   * connections for one client through the recovery window. Any other (a resume, a step down, a
   * new session whose client sent a POST) is known to its client: the transport is let go, as a
   * lost one is, and the session waits for a resume within its recovery window, its queue kept.
   * Frozen, it is not this check's to end: its handoff decides.
   */
  #lastCall(): void {
    if (this.#state === 'frozen') {
      // From now, not from when this check was due (as `#checkPong` counts): the client has not
      // sent its GET, so the PING of `#arrived` still waits in the transport, and a stall of this
      // thread delayed nothing it has seen. Its GET takes that PING at once, and the next one
      // comes well within the client's wait counted from it; counted from the due time, a stall
      // would only queue a second PING behind the first.
      heartbeatQueuesOf(this.#config).again.add(this)
      return
    }
    if (this.#heard) this.#detach(CloseReason.TRANSPORT_CLOSE)
    else this.#endWith(neverCameClose(), { kind: 'overflow' })
  }

  #checkPong(): void {
    // A check that was pending at the freeze: the PONG could not be read, and is not asked for.
    // The next PING is due the rest of pingInterval after the check was (`due`, still the
    // check's), not after it ran: a check the event loop held up (a stall of the server's
    // thread) would delay that PING by as much, and past the client's own wait for it
    // (pingInterval + pingTimeout from the PING before) once the stall passed twice pingTimeout.
    if (this.#heard || this.#state === 'frozen') heartbeatQueuesOf(this.#config).again.add(this, this.due)
    else this.#detach(CloseReason.PING_TIMEOUT)
  }

  #checkBuffers(): void {
    if (this.bufferedAmount > this.#config.maxBufferedBytes) {
      // The transport drops what it holds at once: a client that does not read would not read
      // a graceful goodbye either.
      this.end(CloseReason.SLOW_CONSUMER, { kind: 'overflow' })
    }
  }
}

/**
 * Whether `session` is frozen for a handoff. Read through a call: after an await, TypeScript
 * would keep `session.state` narrowed as it was read before it.
 */
export const frozen = (session: Session): boolean => session.state === 'frozen'
