import { toBase64 } from './base64.js'
import { type BinaryLeaf, extractBinary, hasBinary } from './binary.js'
import { cutText } from './cut.js'
import { ErrorCode, ParleyError } from './errors.js'
import { type EventPacket, type Packet, PacketType, type ReplyPacket, type WireValue } from './packets.js'

/** One function for every text encoding, not a closure per packet (this runs per message). */
const base64Leaf = (leaf: BinaryLeaf): string => toBase64(leaf.bytes)

/**
 * Encodes a packet for a text transport (SSE, long-polling): one line of JSON, binary leaves
 * as base64. Throws UNSERIALIZABLE for values JSON cannot carry (BigInt, cycles, too deep).
 */
export function encodeText(packet: Packet): string {
  return stringify(toWire(packet, base64Leaf), nameOf(packet))
}

/**
 * `encodeText(packet)`, and whether the packet holds binary leaves (a WebSocket then sends it as
 * a binary frame), from one walk of its arguments instead of two.
 */
export function encodeTextTelling(packet: Packet): { text: string; binary: boolean } {
  const wire = toWire(packet, base64Leaf)
  // Only EVENT and REPLY carry binary, and then their wire form ends with the list of leaves.
  const binary =
    (packet.type === PacketType.EVENT && wire.length === 6) ||
    (packet.type === PacketType.REPLY && wire.length === 5)
  return { text: stringify(wire, nameOf(packet)), binary }
}

/**
 * Encodes a packet for WebSocket: a string (text frame) when it holds no binary, otherwise a
 * binary frame: u32 header length, header JSON, then each attachment as u32 length + bytes.
 */
export function encodeFrame(packet: Packet): string | Uint8Array {
  const attachments: Uint8Array[] = []
  const wire = toWire(packet, (leaf) => attachments.push(leaf.bytes) - 1)
  const header = stringify(wire, nameOf(packet))
  if (attachments.length === 0) return header
  return assembleFrame(header, attachments)
}

type LeafRef = (leaf: BinaryLeaf) => string | number

function toWire(packet: Packet, ref: LeafRef): unknown[] {
  switch (packet.type) {
    case PacketType.OPEN: {
      const { type, ...fields } = packet
      return [type, fields]
    }
    case PacketType.HELLO: {
      const { type, ...fields } = packet
      return [type, fields]
    }
    case PacketType.CLOSE:
      return packet.retryAfter === undefined
        ? [packet.type, packet.reason, packet.message]
        : [packet.type, packet.reason, packet.message, packet.retryAfter]
    case PacketType.PING:
    case PacketType.PONG:
    case PacketType.MOVED:
      return [packet.type]
    case PacketType.ACK:
      return [packet.type, packet.ack]
    case PacketType.EVENT:
    case PacketType.REPLY:
      return withArgs(packet, ref)
    case PacketType.ERROR:
      return [packet.type, packet.seq, packet.ackId, packet.code, packet.message]
  }
}

/**
 * `[5, seq, name, args, ackId]` or `[6, seq, ackId, args]`, plus a trailing list of binary leaves
 * when there are any. Throws only UNSERIALIZABLE: the walk for binary leaves reads every value the
 * caller gave, and a getter or a Proxy's trap may throw there (or a revoked Proxy, on which even
 * `instanceof` throws).
 */
function withArgs(packet: EventPacket | ReplyPacket, ref: LeafRef): unknown[] {
  try {
    return walkArgs(packet, ref)
  } catch (cause) {
    let coded = false
    try {
      coded = cause instanceof ParleyError
    } catch {}
    if (coded) throw cause
    throw unserializable('payload cannot be read', nameOf(packet), cause)
  }
}

function walkArgs(packet: EventPacket | ReplyPacket, ref: LeafRef): unknown[] {
  const args = packet.args
  if (!hasBinary(args)) {
    // The common packet, built as one literal of its final length: no array grown, and no
    // head or tail array made to be copied (this runs per message).
    return packet.type === PacketType.EVENT
      ? [packet.type, packet.seq, packet.name, args, packet.ackId]
      : [packet.type, packet.seq, packet.ackId, args]
  }
  const leaves: BinaryLeaf[] = []
  const copy = extractBinary(args, leaves)
  // What the copy holds decides, not the first look: a getter (or a Proxy's trap) may give bytes
  // to `hasBinary` and none to the copy. The packet is then plain, in every form: no empty list
  // of leaves, and no binary frame or flag for it.
  if (leaves.length === 0) {
    return packet.type === PacketType.EVENT
      ? [packet.type, packet.seq, packet.name, copy, packet.ackId]
      : [packet.type, packet.seq, packet.ackId, copy]
  }
  const bins = leaves.map((leaf) => [leaf.path, leaf.kind, ref(leaf)])
  // REPLY has no tail, so its bins follow args directly: [6, seq, ackId, args, bins].
  return packet.type === PacketType.EVENT
    ? [packet.type, packet.seq, packet.name, copy, packet.ackId, bins]
    : [packet.type, packet.seq, packet.ackId, copy, bins]
}

/** The name of an event, for messages; undefined for any other packet. */
function nameOf(packet: Packet): string | undefined {
  return packet.type === PacketType.EVENT ? packet.name : undefined
}

/** `wire` as JSON; throws UNSERIALIZABLE, naming the event `name` if it is one. */
function stringify(wire: unknown[], name?: string): string {
  try {
    return JSON.stringify(wire)
  } catch (cause) {
    throw unserializable('payload cannot be serialised to JSON', name, cause)
  }
}

/**
 * The UNSERIALIZABLE error of a packet whose payload cannot be sent: an event's names the event
 * and says why (`event "price": payload cannot be serialised to JSON (Do not know how to
 * serialize a BigInt)`), so that an application with many emits knows which one, and what in
 * it, without reading `cause`.
 */
function unserializable(
  what: string,
  name: string | undefined,
  cause: unknown,
): ParleyError<typeof ErrorCode.UNSERIALIZABLE> {
  const message = name === undefined ? what : `event ${JSON.stringify(name)}: ${what} (${reason(cause)})`
  return new ParleyError(ErrorCode.UNSERIALIZABLE, message, { cause })
}

/** What a thrown value says, for a message: never throws, at most 200 UTF-16 units. */
function reason(thrown: unknown): string {
  try {
    const said = thrown instanceof Error ? thrown.message : String(thrown)
    return cutText(said, 200)
  } catch {
    return 'it threw when read'
  }
}

const utf8 = new TextEncoder()

function assembleFrame(header: string, attachments: Uint8Array[]): Uint8Array {
  const head = utf8.encode(header)
  let size = 4 + head.length
  for (const a of attachments) size += 4 + a.length
  const frame = new Uint8Array(size)
  const view = new DataView(frame.buffer)
  view.setUint32(0, head.length)
  frame.set(head, 4)
  let offset = 4 + head.length
  for (const a of attachments) {
    view.setUint32(offset, a.length)
    frame.set(a, offset + 4)
    offset += 4 + a.length
  }
  return frame
}

/**
 * An EVENT encoded once for many receivers (a broadcast). Each session numbers its messages,
 * so only `seq` and `ackId` differ between copies: `text(seq, ackId)` and `frame(seq, ackId)`
 * splice them into the shared encoding, byte for byte what `encodeText` and `encodeFrame` give.
 */
export interface PreparedEvent {
  readonly name: string
  readonly args: WireValue[]
  /** True when the arguments hold binary (WebSocket then sends a binary frame). */
  readonly binary: boolean
  /** The text form (SSE, polling, WebSocket text frames), binary leaves as base64. */
  text(seq: number, ackId: number): string
  /** `text(seq, ackId).length`, without making the text. */
  textLength(seq: number, ackId: number): number
  /**
   * The UTF-8 bytes of `text(seq, ackId)` (`ackId` 0 when left out), without making the text (the
   * shared part is encoded once).
   */
  byteLength(seq: number, ackId?: number): number
  /**
   * The WebSocket form: the text when there is no binary, else a binary frame whose header and
   * attachments were encoded once; each copy costs one allocation and a few byte copies.
   */
  frame(seq: number, ackId: number): string | Uint8Array
  /**
   * `text(seq, 0)` in two parts, for a copy that asks no reply: `head` (ASCII, up to and with
   * `seq`), then `tail`, the rest as UTF-8, encoded once and shared by every copy. A transport
   * that writes bytes sends a copy without encoding it again. Undefined when the event holds
   * binary.
   */
  split(seq: number): SplitText | undefined
}

/** A text in two parts: `head` (ASCII) followed by the UTF-8 bytes `tail`. */
export interface SplitText {
  head: string
  tail: Uint8Array
}

/** Encodes an event's name and arguments once. Throws UNSERIALIZABLE like `encodeText`. */
export function prepareEvent(name: string, args: WireValue[]): PreparedEvent {
  const wire = toWire({ type: PacketType.EVENT, seq: 0, name, args, ackId: 0 }, base64Leaf)
  // wire is [5, 0, name, args, 0] or [5, 0, name, args, 0, bins].
  const middle = stringify([wire[2], wire[3]], name).slice(1, -1)
  const bins = wire.length === 6 ? `,${stringify(wire[5] as unknown[], name)}` : ''
  const head = `[${PacketType.EVENT},`
  // Most copies ask for no reply (ackId 0): everything after their seq is the same text.
  const tailNoReply = `,${middle},0${bins}]`
  let tailBytes: Uint8Array | undefined
  // Encoded on first use: a broadcast that reaches no byte-writing transport never pays.
  const sharedTail = () => {
    tailBytes ??= utf8.encode(tailNoReply)
    return tailBytes
  }
  const text = (seq: number, ackId: number) =>
    ackId === 0 ? head + seq + tailNoReply : `${head}${seq},${middle},${ackId}${bins}]`
  // `[5,` + `,` + middle + `,` + bins + `]`: everything but the two numbers.
  const fixedLength = 6 + middle.length + bins.length
  let frame: ((seq: number, ackId: number) => Uint8Array) | undefined
  return {
    name,
    args,
    binary: bins !== '',
    text,
    textLength: (seq, ackId) => fixedLength + digits(seq) + digits(ackId),
    // The head and the digits are ASCII: one byte each. The shared tail holds an ackId of 0.
    byteLength: (seq, ackId = 0) => head.length + digits(seq) + sharedTail().length - 1 + digits(ackId),
    split: (seq) => (bins === '' ? { head: head + seq, tail: sharedTail() } : undefined),
    frame: (seq, ackId) => {
      if (bins === '') return text(seq, ackId)
      // Built on first use: a broadcast that reaches no WebSocket never pays for it.
      frame ??= prepareFrame(middle, args)
      return frame(seq, ackId)
    },
  }
}

/**
 * The binary frame of a prepared event, as `encodeFrame` lays it out: u32 header length, the
 * header `[5,seq,name,args,ackId,bins]` (attachment indexes as data), then the attachments.
 * Everything but the two numbers is UTF-8 encoded once.
 */
function prepareFrame(middle: string, args: WireValue[]): (seq: number, ackId: number) => Uint8Array {
  const attachments: Uint8Array[] = []
  const wire = toWire(
    { type: PacketType.EVENT, seq: 0, name: '', args, ackId: 0 },
    (leaf) => attachments.push(leaf.bytes) - 1,
  )
  const head = utf8.encode(`[${PacketType.EVENT},`)
  const between = utf8.encode(`,${middle},`)
  const tail = utf8.encode(`,${stringify(wire[5] as unknown[])}]`)
  let blockSize = 0
  for (const a of attachments) blockSize += 4 + a.length
  const block = new Uint8Array(blockSize)
  const blockView = new DataView(block.buffer)
  let offset = 0
  for (const a of attachments) {
    blockView.setUint32(offset, a.length)
    block.set(a, offset + 4)
    offset += 4 + a.length
  }
  return (seq, ackId) => {
    // Safe integers print as ASCII digits: one byte per character.
    const seqText = String(seq)
    const ackText = String(ackId)
    const headerLength = head.length + seqText.length + between.length + ackText.length + tail.length
    const frame = new Uint8Array(4 + headerLength + block.length)
    new DataView(frame.buffer).setUint32(0, headerLength)
    let at = 4
    frame.set(head, at)
    at += head.length
    at = writeAscii(frame, at, seqText)
    frame.set(between, at)
    at += between.length
    at = writeAscii(frame, at, ackText)
    frame.set(tail, at)
    frame.set(block, at + tail.length)
    return frame
  }
}

/** How many characters a non-negative safe integer prints as. */
function digits(n: number): number {
  let count = 1
  while (n >= 10) {
    n = Math.floor(n / 10)
    count++
  }
  return count
}

function writeAscii(target: Uint8Array, at: number, text: string): number {
  for (let i = 0; i < text.length; i++) target[at + i] = text.charCodeAt(i)
  return at + text.length
}
