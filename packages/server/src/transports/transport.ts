import type { ServerResponse } from 'node:http'
import {
  type AckPacket,
  type ClosePacket,
  type CloseReason,
  decodeText,
  type EventPacket,
  encodeTextTelling,
  type OpenPacket,
  type Packet,
  PacketType,
  type ParleyError,
  type PreparedEvent,
  type SplitText,
  type TransportName,
} from '@parley/protocol'

/** A packet ready to go out: encoded once, so its size is known before any transport sees it. */
export interface Outgoing<P extends Packet = Packet> {
  packet: P
  /** The packet as one line of JSON (binary as base64). */
  text: string
  /** True when the packet carries binary leaves (WebSocket then sends a binary frame). */
  binary: boolean
  /** The WebSocket frame, when it was prepared once for many sessions (a binary broadcast). */
  frame?: () => string | Uint8Array
  /**
   * The text in two parts, when it has them: `text` is `head` (ASCII) followed by the UTF-8
   * bytes `tail`. A broadcast copy (no binary, no reply asked) shares its `tail` with every
   * copy; a long packet kept as UTF-8 (see `keptAsUtf8`) is all `tail`. A transport that writes
   * bytes sends `tail` as it is, encoded once. Only application packets have one (never a CLOSE).
   */
  split?: () => SplitText | undefined
  /** `text.length`, given where reading `text` would decode it (a packet kept as UTF-8). */
  readonly textLength?: number
  /**
   * A broadcast's copy that asks no reply: the encoding it shares with every other copy, `seq`
   * being its own. A transport that holds packets until the client asks for them (polling)
   * keeps these two instead of the copy, so that nothing made for one delivery waits with it.
   */
  readonly shared?: PreparedEvent
  readonly seq?: number
  /**
   * True for a packet known to be numbered (EVENT, REPLY or ERROR) without making its packet
   * object: a broadcast's copy, or one kept for replay. See `isClose`.
   */
  readonly numbered?: boolean
}

/**
 * True when `out` is a CLOSE (a transport keeps it for a client that comes back for it). A
 * numbered packet is not one, and its packet is not made to ask: a replayed one's would be
 * decoded from its text.
 */
export function isClose(out: Outgoing): boolean {
  return out.numbered !== true && out.packet.type === PacketType.CLOSE
}

/** True for a broadcast's shared encoding, beside the other things that wait for a client. */
export function isPreparedEvent(value: unknown): value is PreparedEvent {
  return (
    typeof value === 'object' && value !== null && typeof (value as PreparedEvent).byteLength === 'function'
  )
}

/** The packet of a text the session kept for replay (it encoded the text itself). */
function decodeKept(text: string): Packet {
  const decoded = decodeText(text, { maxPayload: Number.MAX_SAFE_INTEGER })
  if (!decoded.ok) throw decoded.error
  return decoded.packet
}

/** Encodes a packet for sending. Throws PARLEY_UNSERIALIZABLE for values JSON cannot carry. */
export function outgoing<P extends Packet>(packet: P): Outgoing<P> {
  const { text, binary } = encodeTextTelling(packet)
  return { packet, text, binary }
}

/** A copy of a prepared (broadcast) event for one session: its own `seq` and `ackId`. */
export function preparedOutgoing(prepared: PreparedEvent, seq: number, ackId: number): Outgoing<EventPacket> {
  return new PreparedCopy(prepared, seq, ackId)
}

/**
 * One session's copy of a broadcast: its text, and the rest built only if asked for. A
 * broadcast makes one per recipient, and each lives in the replay buffer until the client's
 * ACK, so it is kept small: no packet object and no closure per copy.
 */
class PreparedCopy implements Outgoing<EventPacket> {
  readonly #prepared: PreparedEvent
  readonly #seq: number
  readonly #ackId: number

  constructor(prepared: PreparedEvent, seq: number, ackId: number) {
    this.#prepared = prepared
    this.#seq = seq
    this.#ackId = ackId
  }

  /**
   * Made when asked for (a WebSocket sends the split form instead, and never needs it), and not
   * kept: each transport reads it once, and a copy that outlived a young collection would keep
   * its text out of the young generation too.
   */
  get text(): string {
    return this.#prepared.text(this.#seq, this.#ackId)
  }

  get shared(): PreparedEvent | undefined {
    return this.#ackId === 0 ? this.#prepared : undefined
  }

  get seq(): number {
    return this.#seq
  }

  get numbered(): true {
    return true
  }

  /** Without making the text: the session counts every copy it sends, and most never need it. */
  get textLength(): number {
    return this.#prepared.textLength(this.#seq, this.#ackId)
  }

  split(): SplitText | undefined {
    return this.#ackId === 0 ? this.#prepared.split(this.#seq) : undefined
  }

  get binary(): boolean {
    return this.#prepared.binary
  }

  get packet(): EventPacket {
    const { name, args } = this.#prepared
    return { type: PacketType.EVENT, seq: this.#seq, name, args, ackId: this.#ackId }
  }

  frame(): string | Uint8Array {
    return this.#prepared.frame(this.#seq, this.#ackId)
  }
}

/**
 * Texts at least this long are kept for replay as UTF-8 bytes (see `keptAsUtf8`). Well above
 * the 4 KiB under which `Buffer.from` takes a slice of a shared 8 KiB pool, which a kept slice
 * would pin.
 */
export const KEEP_AS_UTF8_FROM = 16 * 1024

/**
 * A long packet kept for replay as its UTF-8 bytes, instead of its text and its packet object,
 * for a transport that writes bytes (`Transport.writesBytes`). A string lives in V8's heap:
 * kept until the client's ACK (up to a second or more), each long one is copied by the garbage
 * collector out of the young generation into the old one, which was most of what a 64 KB echo
 * cost Parley over socket.io. A Buffer's bytes live outside the heap and are never copied. The
 * bytes go out as the split form with an empty head, as a broadcast's shared tail does, so the
 * text is encoded once, as the socket would have done anyway. The text and the packet are made
 * again only when asked for: a resume over polling, a handoff's snapshot.
 */
export function keptAsUtf8(text: string): Outgoing {
  return new KeptUtf8(text)
}

class KeptUtf8 implements Outgoing {
  readonly #bytes: Buffer
  readonly binary = false
  readonly textLength: number

  constructor(text: string) {
    this.#bytes = Buffer.from(text, 'utf8')
    this.textLength = text.length
  }

  /** Decoded anew each time: keeping the string would keep what this object saves. */
  get text(): string {
    return this.#bytes.toString('utf8')
  }

  get packet(): Packet {
    return decodeKept(this.text)
  }

  get numbered(): true {
    return true
  }

  split(): SplitText {
    return { head: '', tail: this.#bytes }
  }
}

/**
 * A packet of a session's own, kept for replay as its text alone, going out again (a resume):
 * its packet object is decoded anew only if a transport asks for it.
 */
export function replayedText(text: string): Outgoing {
  return new ReplayedText(text)
}

class ReplayedText implements Outgoing {
  readonly binary = false
  readonly text: string

  constructor(text: string) {
    this.text = text
  }

  get packet(): Packet {
    return decodeKept(this.text)
  }

  get numbered(): true {
    return true
  }
}

/**
 * Why a transport stopped, as far as its medium can tell. Never 'client disconnect': only a
 * CLOSE packet says that, whatever the medium did.
 */
export type TransportCloseReason = typeof CloseReason.TRANSPORT_CLOSE | typeof CloseReason.PAYLOAD_TOO_LARGE

/**
 * How the server ends a transport; each medium maps it to what it can say (WebSocket codes).
 * `overflow`: the client stopped reading; drop whatever waits for it at once (keeping at most
 * the CLOSE for a later request) rather than hold it for a graceful close that cannot happen.
 */
export type CloseKind = 'normal' | 'shutdown' | 'refused' | 'overflow'

/**
 * What a transport reports to whoever owns it (the session), naming itself: an owner that
 * swapped transports tells a stale one by it. The session is its transport's owner itself, with
 * no object in between: it lives as long as the connection, and idle connections should cost
 * little.
 */
export interface TransportOwner {
  /** A packet that decoded cleanly, from `size` characters (bytes, for a binary frame). */
  transportPacket(transport: Transport, packet: Packet, size: number): void
  /** Input that does not decode; the transport stays open, the owner decides. */
  transportInvalid(transport: Transport, error: ParleyError): void
  /** The medium is gone. Reported at most once, and never after `close()` was called. */
  transportLost(transport: Transport, reason: TransportCloseReason): void
  /**
   * True for an owner that `close()` keeps, and that still hears the client's packets after it,
   * until the medium is gone (a WebSocket's closing handshake): a frozen session's goodbye
   * crossing its CLOSE 'server handoff' (see `FrozenGoodbye`). Only `transportPacket` is called
   * after the close.
   */
  readonly hearsAfterClose?: boolean
  /**
   * The client never got the numbered packets after `after` up to `through`, though the
   * transport gave them to an earlier request (see `HttpSide.downstream`): send them again.
   * Only SSE and polling report it.
   */
  transportMissed?(transport: Transport, after: number, through: number): void
  /**
   * The client asked for the downstream (a GET, on a transport whose `downstreamFollows`): it
   * got the OPEN. A poll's GET comes as a packet (its PONG) first.
   */
  transportDownstream?(transport: Transport): void
}

/**
 * One medium between a client and the server: WebSocket, SSE (+ POST) or long-polling (+ POST).
 * A transport frames packets and knows how many bytes wait in it and how it closes; it knows
 * nothing of sessions, sequence numbers or acks.
 */
export interface Transport {
  readonly name: TransportName
  /** False once closed by either side. */
  readonly open: boolean
  /** Bytes accepted by `send` and not yet handed to the operating system (real bytes). */
  readonly bufferedAmount: number
  /**
   * True when closed with packets still waiting for a downstream that may yet come (an HTTP
   * GET); the server keeps such a transport for a short while to hand them over.
   */
  readonly lingering: boolean
  /**
   * True when the transport writes a packet's split form (`Outgoing.split`) as bytes, without
   * making its text: the session then keeps long packets as bytes (see `keptAsUtf8`).
   */
  readonly writesBytes: boolean
  /**
   * True when the OPEN goes in the answer to one request (the handshake POST) and the client,
   * once it has it, asks for the downstream with another (SSE, polling): until that one comes,
   * the server cannot tell whether the OPEN reached the client. Over WebSocket it goes on the
   * connection that carries everything after it.
   */
  readonly downstreamFollows: boolean
  /**
   * Delivers the handshake answer (on HTTP transports: the body of the handshake POST): OPEN,
   * or the CLOSE of the session that a resume named when that session has ended. `ack`, that
   * session's last ACK, goes before the CLOSE, for a client that reads one there (HELLO
   * `closeAck`).
   */
  handshake(answer: Outgoing<OpenPacket | ClosePacket>, ack?: Outgoing<AckPacket>): void
  /**
   * Queues one packet. Never throws; dropped silently once closed. `seq` is the packet's
   * sequence number when it is numbered (0 or absent otherwise): a transport that can tell which
   * packets its client missed (SSE, polling) reads it.
   */
  send(out: Outgoing, seq?: number): void
  /**
   * Sends ACK `ack` with whatever the transport sends next, rather than on its own. Present
   * where an ACK alone costs the client a whole request (polling: it ends the held GET, and the
   * client polls again); the session uses it for an ACK its timer sends, never for one that
   * covers many packets or bytes (see `Session.#sendAck`). What goes next: any packet, the next
   * PING at the latest; a newer ACK replaces it.
   */
  ackWithNext?(ack: number): void
  /** Ends the medium after what was already sent. No `close` handler call follows. */
  close(kind: CloseKind): void
  /** Sets the one owner of this transport's events; `null` detaches it (stale callbacks are ignored). */
  bind(owner: TransportOwner | null): void
  /**
   * The HTTP side of SSE and long-polling: how the endpoints hand it the client's requests.
   * Absent on WebSocket, which has one connection for both ways.
   */
  readonly http?: HttpSide
}

/** What the HTTP endpoints hand an SSE or polling transport. */
export interface HttpSide {
  /**
   * The body of the handshake POST's answer: the OPEN line once a session has attached the
   * transport, or the CLOSE line of the ended session a resume named (after its ACK line, for a
   * client that reads one). Undefined until then.
   * Given once: the transport lets go of it (it would otherwise live as long as the session).
   */
  takeAnswerLine(): string | undefined
  /**
   * A GET for the downstream: SSE streams on it, polling holds it until there is something.
   * `ack` is the GET's `ack` parameter, already handed to the session as an ACK: it also says
   * what an earlier GET (an answer, a stream) carried that the client never read
   * (docs/protocol.md, Delivery).
   */
  downstream(res: ServerResponse, headers: Record<string, string>, ack?: number): void
  /** Answers a GET that came after the close with the packets that were left. */
  serveLast(res: ServerResponse, headers: Record<string, string>): void
  /**
   * How long (ms from now) the client may take to send the GET it is about to send, or
   * undefined when none is expected. A polling client whose last poll was answered asks again
   * within its usual turnaround; an SSE client opens its stream once, right after the
   * handshake (within `NEXT_GET_UNMEASURED_MS` of it, as a polling client's first GET). None is
   * expected while a GET is held or streams, nor after the client dropped one: it left, or
   * resumes on a new transport.
   */
  nextGetWithin(): number | undefined
  /** Packets from an upstream POST body, decoded, and the length of the line each came from. */
  receive(packets: Packet[], sizes: readonly number[]): void
  /** An upstream POST body that did not decode. */
  reject(error: ParleyError): void
}

/** The bookkeeping every transport shares: its owner, and reporting close exactly once. */
export abstract class BaseTransport implements Transport {
  abstract readonly name: TransportName
  abstract readonly bufferedAmount: number
  abstract handshake(answer: Outgoing<OpenPacket | ClosePacket>, ack?: Outgoing<AckPacket>): void
  abstract send(out: Outgoing, seq?: number): void
  protected abstract end(kind: CloseKind): void

  #owner: TransportOwner | null = null
  #open = true

  get open(): boolean {
    return this.#open
  }

  get lingering(): boolean {
    return false
  }

  get writesBytes(): boolean {
    return false
  }

  get downstreamFollows(): boolean {
    return false
  }

  get http(): HttpSide | undefined {
    return undefined
  }

  bind(owner: TransportOwner | null): void {
    this.#owner = owner
  }

  close(kind: CloseKind): void {
    if (!this.#open) return
    this.#open = false
    if (!this.#owner?.hearsAfterClose) this.#owner = null
    this.end(kind)
  }

  /** One packet (a WebSocket message). */
  protected emitPacket(packet: Packet, size: number): void {
    const owner = this.#owner
    if (owner && (this.#open || owner.hearsAfterClose)) owner.transportPacket(this, packet, size)
  }

  protected emitPackets(packets: Packet[], sizes: readonly number[]): void {
    for (let i = 0; i < packets.length; i++) {
      // The owner may end the session (and unbind us) in the middle of a batch.
      const owner = this.#owner
      if (!owner || !(this.#open || owner.hearsAfterClose)) return
      owner.transportPacket(this, packets[i]!, sizes[i] ?? 0)
    }
  }

  protected emitInvalid(error: ParleyError): void {
    if (this.#open) this.#owner?.transportInvalid(this, error)
  }

  /** The client never got the numbered packets after `after` up to `through` (see `TransportOwner`). */
  protected missed(after: number, through: number): void {
    if (this.#open) this.#owner?.transportMissed?.(this, after, through)
  }

  /** The client asked for the downstream (see `TransportOwner.transportDownstream`). */
  protected downstreamCame(): void {
    if (this.#open) this.#owner?.transportDownstream?.(this)
  }

  /** The medium went away by itself (peer closed, network error, ...). */
  protected lost(reason: TransportCloseReason): void {
    if (!this.#open) return
    this.#open = false
    const owner = this.#owner
    this.#owner = null
    owner?.transportLost(this, reason)
  }
}
