import { toBase64 } from './base64.js'
import { type BinaryLeaf, extractBinary, hasBinary } from './binary.js'
import { ErrorCode, ParleyError } from './errors.js'
import { type Packet, PacketType, type WireValue } from './packets.js'

/**
 * Encodes a packet for a text transport (SSE, long-polling): one line of JSON, binary leaves
 * as base64. Throws UNSERIALIZABLE for values JSON cannot carry (BigInt, cycles, too deep).
 */
export function encodeText(packet: Packet): string {
  return stringify(toWire(packet, (leaf) => toBase64(leaf.bytes)))
}

/**
 * Encodes a packet for WebSocket: a string (text frame) when it holds no binary, otherwise a
 * binary frame: u32 header length, header JSON, then each attachment as u32 length + bytes.
 */
export function encodeFrame(packet: Packet): string | Uint8Array {
  const attachments: Uint8Array[] = []
  const wire = toWire(packet, (leaf) => attachments.push(leaf.bytes) - 1)
  const header = stringify(wire)
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
      return withArgs([packet.type, packet.seq, packet.name], packet.args, [packet.ackId], ref)
    case PacketType.REPLY:
      return withArgs([packet.type, packet.seq, packet.ackId], packet.args, [], ref)
    case PacketType.ERROR:
      return [packet.type, packet.seq, packet.ackId, packet.code, packet.message]
  }
}

/** `[...head, args, ...tail]`, plus a trailing list of binary leaves when there are any. */
function withArgs(head: unknown[], args: unknown[], tail: unknown[], ref: LeafRef): unknown[] {
  if (!hasBinary(args)) return [...head, args, ...tail]
  const leaves: BinaryLeaf[] = []
  const copy = extractBinary(args, leaves)
  const bins = leaves.map((leaf) => [leaf.path, leaf.kind, ref(leaf)])
  // REPLY has no tail, so its bins follow args directly: [6, seq, ackId, args, bins].
  return [...head, copy, ...tail, bins]
}

function stringify(wire: unknown[]): string {
  try {
    return JSON.stringify(wire)
  } catch (cause) {
    throw new ParleyError(ErrorCode.UNSERIALIZABLE, 'payload cannot be serialised to JSON', { cause })
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
 * so only `seq` and `ackId` differ between copies: `text(seq, ackId)` splices them into the
 * shared encoding, byte for byte what `encodeText` would give.
 */
export interface PreparedEvent {
  readonly name: string
  readonly args: WireValue[]
  /** True when the arguments hold binary (WebSocket then sends a binary frame). */
  readonly binary: boolean
  text(seq: number, ackId: number): string
}

/** Encodes an event's name and arguments once. Throws UNSERIALIZABLE like `encodeText`. */
export function prepareEvent(name: string, args: WireValue[]): PreparedEvent {
  const wire = toWire({ type: PacketType.EVENT, seq: 0, name, args, ackId: 0 }, (leaf) =>
    toBase64(leaf.bytes),
  )
  // wire is [5, 0, name, args, 0] or [5, 0, name, args, 0, bins].
  const middle = stringify([wire[2], wire[3]]).slice(1, -1)
  const bins = wire.length === 6 ? `,${stringify(wire[5] as unknown[])}` : ''
  return {
    name,
    args,
    binary: bins !== '',
    text: (seq, ackId) => `[${PacketType.EVENT},${seq},${middle},${ackId}${bins}]`,
  }
}
