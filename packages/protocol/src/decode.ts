import { fromBase64 } from './base64.js'
import { BinaryKind, insertBinary } from './binary.js'
import { ErrorCode, isCloseReason, ParleyError } from './errors.js'
import { checkEventName, isForbiddenKey } from './event-name.js'
import {
  isTransportName,
  type JsonValue,
  type Packet,
  PacketType,
  TRANSPORTS,
  type TransportName,
  WireLimits,
  type WireValue,
} from './packets.js'

export type DecodeResult = { ok: true; packet: Packet } | { ok: false; error: ParleyError }
export type DecodeBatchResult = { ok: true; packets: Packet[] } | { ok: false; error: ParleyError }

export interface DecodeOptions {
  /** Largest accepted input; longer input is refused before it is parsed. */
  maxPayload?: number
}

/**
 * Decodes one text packet. Never throws: any input, however hostile, gives either a packet
 * whose every field has been checked, or a coded error.
 */
export function decodeText(text: string, options?: DecodeOptions): DecodeResult {
  try {
    if (typeof text !== 'string') return fail(ErrorCode.INVALID_PACKET, 'packet is not text')
    const limit = options?.maxPayload ?? WireLimits.defaultMaxPayload
    if (text.length > limit) return fail(ErrorCode.PAYLOAD_TOO_LARGE, `packet is longer than ${limit}`)
    const parsed = parseJson(text)
    if (!parsed.ok) return parsed
    return toPacket(parsed.value, (data) => (typeof data === 'string' ? fromBase64(data) : undefined))
  } catch (cause) {
    return fail(ErrorCode.INVALID_PACKET, 'packet could not be decoded', cause)
  }
}

/** Decodes a WebSocket message: a text frame, or a binary frame as `encodeFrame` makes it. */
export function decodeFrame(data: string | Uint8Array | ArrayBuffer, options?: DecodeOptions): DecodeResult {
  try {
    if (typeof data === 'string') return decodeText(data, options)
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : data
    if (!(bytes instanceof Uint8Array))
      return fail(ErrorCode.INVALID_PACKET, 'frame is neither text nor bytes')
    const limit = options?.maxPayload ?? WireLimits.defaultMaxPayload
    if (bytes.length > limit) return fail(ErrorCode.PAYLOAD_TOO_LARGE, `frame is longer than ${limit}`)
    const split = splitFrame(bytes)
    if (!split.ok) return split
    const parsed = parseJson(split.header)
    if (!parsed.ok) return parsed
    const { attachments } = split
    let used = 0
    const result = toPacket(parsed.value, (data) => {
      if (data !== used || used >= attachments.length) return undefined
      return attachments[used++]
    })
    if (result.ok && used !== attachments.length) {
      return fail(ErrorCode.INVALID_BINARY, 'frame carries attachments that no path refers to')
    }
    return result
  } catch (cause) {
    return fail(ErrorCode.INVALID_PACKET, 'frame could not be decoded', cause)
  }
}

/**
 * Decodes an HTTP body of packets, one per line (the SSE/polling upstream). All or nothing:
 * one bad line refuses the whole body.
 */
export function decodeBatch(body: string, options?: DecodeOptions): DecodeBatchResult {
  if (typeof body !== 'string') return fail(ErrorCode.INVALID_PACKET, 'body is not text')
  const packets: Packet[] = []
  for (const line of body.split('\n')) {
    if (line === '') continue
    const result = decodeText(line, options)
    if (!result.ok) return result
    packets.push(result.packet)
  }
  if (packets.length === 0) return fail(ErrorCode.INVALID_PACKET, 'body holds no packet')
  return { ok: true, packets }
}

/**
 * What a conforming peer would refuse in a packet this side encoded, or undefined: longer than
 * `maxPayload`, nested deeper than the wire allows, or holding a `__proto__` / `constructor`
 * key. A sender checks before it sends, so that a packet the receiver must refuse is refused at
 * the call site, with a coded error, instead of on the wire. Cheap for the common packet: a
 * length test and one regular expression; the walks run only when those cannot rule it out.
 */
export function checkEncoded(text: string, maxPayload: number): ParleyError | undefined {
  if (text.length > maxPayload) {
    return new ParleyError(
      ErrorCode.PAYLOAD_TOO_LARGE,
      `the packet is ${text.length} long, past maxPayload`,
      {
        details: { limit: maxPayload, size: text.length },
      },
    )
  }
  const maxNesting = WireLimits.maxDepth + 2
  if (text.length >= 2 * (maxNesting + 1) && exceedsDepth(text, maxNesting)) {
    return new ParleyError(
      ErrorCode.TOO_DEEP,
      `the payload is nested deeper than ${WireLimits.maxDepth} levels`,
    )
  }
  if (MAYBE_FORBIDDEN.test(text)) {
    const parsed = parseJson(text)
    if (!parsed.ok) return parsed.error
  }
  return undefined
}

/** Text that may hold a refused key: spelled out, or with a `\u` escape somewhere in it. */
const MAYBE_FORBIDDEN = /__proto__|constructor|\\u/

// ---------------------------------------------------------------------------------------------

type Fail = { ok: false; error: ParleyError }

function fail(code: ErrorCode, message: string, cause?: unknown): Fail {
  return { ok: false, error: new ParleyError(code, message, cause === undefined ? undefined : { cause }) }
}

function parseJson(text: string): { ok: true; value: unknown } | Fail {
  // Outer packet array + args array + the application's own nesting.
  const maxNesting = WireLimits.maxDepth + 2
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (cause) {
    if (exceedsDepth(text, maxNesting)) return tooDeep()
    return fail(ErrorCode.INVALID_JSON, 'packet is not valid JSON', cause)
  }
  // Valid JSON nested deeper than the limit opens and closes at least maxNesting + 1
  // containers, so shorter text needs no scan: most packets are short, and the scan costs
  // about half as much as JSON.parse itself. Nothing has walked the value yet.
  if (text.length >= 2 * (maxNesting + 1) && exceedsDepth(text, maxNesting)) return tooDeep()
  // JSON.parse keeps "__proto__" as a plain own key, but an application that later merges the
  // payload into an object would be polluted. Walk only when the text could hold such a key.
  if (
    (text.includes('__proto__') || text.includes('constructor') || text.includes('\\u')) &&
    hasForbiddenKey(value)
  ) {
    return fail(ErrorCode.FORBIDDEN_KEY, 'packet holds a "__proto__" or "constructor" key')
  }
  return { ok: true, value }
}

function tooDeep(): Fail {
  return fail(ErrorCode.TOO_DEEP, `packet is nested deeper than ${WireLimits.maxDepth} levels`)
}

/** A linear scan of the JSON text, so that nesting is bounded before anything walks it. */
function exceedsDepth(text: string, max: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92 /* \ */) i++
      else if (c === 34 /* " */) inString = false
    } else if (c === 34) inString = true
    else if (c === 91 /* [ */ || c === 123 /* { */) {
      if (++depth > max) return true
    } else if (c === 93 /* ] */ || c === 125 /* } */) depth--
  }
  return false
}

function hasForbiddenKey(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false
  if (Array.isArray(value)) return value.some(hasForbiddenKey)
  for (const key of Object.keys(value)) {
    if (isForbiddenKey(key)) return true
    if (hasForbiddenKey((value as Record<string, unknown>)[key])) return true
  }
  return false
}

function splitFrame(bytes: Uint8Array): { ok: true; header: string; attachments: Uint8Array[] } | Fail {
  if (bytes.length < 4)
    return fail(ErrorCode.INVALID_BINARY, 'binary frame is shorter than its header length')
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const headerLength = view.getUint32(0)
  if (headerLength > bytes.length - 4)
    return fail(ErrorCode.INVALID_BINARY, 'binary frame header is truncated')
  let header: string
  try {
    header = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(4, 4 + headerLength))
  } catch (cause) {
    return fail(ErrorCode.INVALID_BINARY, 'binary frame header is not UTF-8', cause)
  }
  const attachments: Uint8Array[] = []
  let offset = 4 + headerLength
  while (offset < bytes.length) {
    if (offset + 4 > bytes.length) return fail(ErrorCode.INVALID_BINARY, 'attachment length is truncated')
    const length = view.getUint32(offset)
    if (length > bytes.length - offset - 4) return fail(ErrorCode.INVALID_BINARY, 'attachment is truncated')
    attachments.push(bytes.subarray(offset + 4, offset + 4 + length))
    offset += 4 + length
  }
  return { ok: true, header, attachments }
}

// ---------------------------------------------------------------------------------------------
// Shape checks, one per packet type.

type ResolveLeaf = (data: unknown) => Uint8Array | undefined

function toPacket(value: unknown, resolveLeaf: ResolveLeaf): DecodeResult {
  if (!Array.isArray(value) || value.length === 0)
    return fail(ErrorCode.INVALID_PACKET, 'packet is not a non-empty array')
  const type = value[0]
  switch (type) {
    case PacketType.OPEN:
      return decodeOpen(value)
    case PacketType.HELLO:
      return decodeHello(value)
    case PacketType.CLOSE:
      return decodeClose(value)
    case PacketType.PING:
    case PacketType.PONG:
    case PacketType.MOVED:
      return value.length === 1
        ? ok({ type })
        : fail(ErrorCode.INVALID_PACKET, `packet type ${type} takes no fields`)
    case PacketType.ACK:
      if (value.length !== 2 || !isCount(value[1]))
        return fail(ErrorCode.INVALID_SEQ, 'ACK needs one sequence number')
      return ok({ type, ack: value[1] })
    case PacketType.EVENT:
      return decodeEvent(value, resolveLeaf)
    case PacketType.REPLY:
      return decodeReply(value, resolveLeaf)
    case PacketType.ERROR:
      return decodeError(value)
    default:
      return fail(ErrorCode.UNKNOWN_PACKET_TYPE, `unknown packet type ${JSON.stringify(type)?.slice(0, 32)}`)
  }
}

function ok(packet: Packet): DecodeResult {
  return { ok: true, packet }
}

/** A non-negative safe integer: sequence numbers, acks and ack ids. */
function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

function decodeEvent(value: unknown[], resolveLeaf: ResolveLeaf): DecodeResult {
  if (value.length !== 5 && value.length !== 6)
    return fail(ErrorCode.INVALID_PACKET, 'EVENT has 5 or 6 fields')
  const [, seq, name, args, ackId, bins] = value as [unknown, unknown, string, unknown, unknown, unknown]
  if (!isCount(seq)) return fail(ErrorCode.INVALID_SEQ, 'EVENT sequence number is not a safe integer')
  const badName = checkEventName(name)
  if (badName) return { ok: false, error: badName }
  if (!Array.isArray(args)) return fail(ErrorCode.INVALID_PACKET, 'EVENT arguments are not an array')
  if (!isCount(ackId)) return fail(ErrorCode.INVALID_ACK_ID, 'EVENT ack id is not a safe integer')
  const filled = fillBinary(args, bins, resolveLeaf)
  if (filled) return filled
  return ok({ type: PacketType.EVENT, seq, name, args: args as WireValue[], ackId })
}

function decodeReply(value: unknown[], resolveLeaf: ResolveLeaf): DecodeResult {
  if (value.length !== 4 && value.length !== 5)
    return fail(ErrorCode.INVALID_PACKET, 'REPLY has 4 or 5 fields')
  const [, seq, ackId, args, bins] = value
  if (!isCount(seq) || seq === 0)
    return fail(ErrorCode.INVALID_SEQ, 'REPLY sequence number must be a positive safe integer')
  if (!isCount(ackId) || ackId === 0)
    return fail(ErrorCode.INVALID_ACK_ID, 'REPLY ack id must be a positive safe integer')
  if (!Array.isArray(args)) return fail(ErrorCode.INVALID_PACKET, 'REPLY arguments are not an array')
  const filled = fillBinary(args, bins, resolveLeaf)
  if (filled) return filled
  return ok({ type: PacketType.REPLY, seq, ackId, args: args as WireValue[] })
}

function decodeError(value: unknown[]): DecodeResult {
  if (value.length !== 5) return fail(ErrorCode.INVALID_PACKET, 'ERROR has 5 fields')
  const [, seq, ackId, code, message] = value
  // seq 0 is the one unnumbered ERROR: the answer to a refused HELLO.
  if (!isCount(seq)) return fail(ErrorCode.INVALID_SEQ, 'ERROR sequence number is not a safe integer')
  if (!isCount(ackId)) return fail(ErrorCode.INVALID_ACK_ID, 'ERROR ack id is not a safe integer')
  if (typeof code !== 'string' || code.length === 0 || code.length > 128) {
    return fail(ErrorCode.INVALID_PACKET, 'ERROR code must be a string of 1 to 128 characters')
  }
  if (typeof message !== 'string') return fail(ErrorCode.INVALID_PACKET, 'ERROR message is not a string')
  return ok({ type: PacketType.ERROR, seq, ackId, code, message })
}

function decodeClose(value: unknown[]): DecodeResult {
  if (value.length !== 3 && value.length !== 4)
    return fail(ErrorCode.INVALID_PACKET, 'CLOSE has 3 or 4 fields')
  const [, reason, message, retryAfter] = value
  if (!isCloseReason(reason)) return fail(ErrorCode.INVALID_PACKET, 'CLOSE reason is not a known reason')
  if (typeof message !== 'string') return fail(ErrorCode.INVALID_PACKET, 'CLOSE message is not a string')
  if (value.length === 4) {
    if (!isCount(retryAfter))
      return fail(ErrorCode.INVALID_PACKET, 'CLOSE retryAfter is not a count of milliseconds')
    return ok({ type: PacketType.CLOSE, reason, message, retryAfter })
  }
  return ok({ type: PacketType.CLOSE, reason, message })
}

function decodeHello(value: unknown[]): DecodeResult {
  if (value.length !== 2 || !isRecord(value[1]))
    return fail(ErrorCode.INVALID_PACKET, 'HELLO is [8, {fields}]')
  const { auth, sid, ack } = value[1]
  const packet: Packet = { type: PacketType.HELLO }
  if (auth !== undefined) packet.auth = auth as JsonValue
  if (sid !== undefined) {
    if (!isSid(sid)) return fail(ErrorCode.INVALID_PACKET, 'HELLO sid is not a session id')
    packet.sid = sid
    if (ack !== undefined && !isCount(ack))
      return fail(ErrorCode.INVALID_SEQ, 'HELLO ack is not a safe integer')
    packet.ack = ack ?? 0
  }
  return ok(packet)
}

function decodeOpen(value: unknown[]): DecodeResult {
  if (value.length !== 2 || !isRecord(value[1]))
    return fail(ErrorCode.INVALID_PACKET, 'OPEN is [0, {fields}]')
  const f = value[1]
  const positive = (v: unknown): v is number => isCount(v) && v > 0
  if (!isSid(f.sid)) return fail(ErrorCode.INVALID_PACKET, 'OPEN sid is not a session id')
  if (!isSid(f.id)) return fail(ErrorCode.INVALID_PACKET, 'OPEN id is not a socket id')
  if (!positive(f.pingInterval) || !positive(f.pingTimeout) || !positive(f.maxPayload)) {
    return fail(ErrorCode.INVALID_PACKET, 'OPEN timings and maxPayload must be positive integers')
  }
  if (!Array.isArray(f.transports) || !f.transports.every(isTransportName)) {
    return fail(ErrorCode.INVALID_PACKET, `OPEN transports must be a list of ${TRANSPORTS.join(', ')}`)
  }
  if (typeof f.recovered !== 'boolean' || !isCount(f.ack)) {
    return fail(ErrorCode.INVALID_PACKET, 'OPEN needs recovered (boolean) and ack (integer)')
  }
  return ok({
    type: PacketType.OPEN,
    sid: f.sid,
    id: f.id,
    pingInterval: f.pingInterval,
    pingTimeout: f.pingTimeout,
    maxPayload: f.maxPayload,
    transports: f.transports as TransportName[],
    recovered: f.recovered,
    ack: f.ack,
  })
}

const SID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/

/** True for a session id or a socket id: 1 to 64 URL-safe characters (`A-Z a-z 0-9 _ -`). */
export function isSid(value: unknown): value is string {
  return typeof value === 'string' && SID_PATTERN.test(value)
}

/** Puts the packet's binary leaves back into `args`; returns a failure or undefined. */
function fillBinary(args: unknown[], bins: unknown, resolveLeaf: ResolveLeaf): Fail | undefined {
  if (bins === undefined) return undefined
  if (!Array.isArray(bins) || bins.length === 0)
    return fail(ErrorCode.INVALID_BINARY, 'binary list is not a non-empty array')
  for (const entry of bins) {
    if (!Array.isArray(entry) || entry.length !== 3 || !Array.isArray(entry[0])) {
      return fail(ErrorCode.INVALID_BINARY, 'binary entry is not [path, kind, data]')
    }
    const [path, kind, data] = entry as [unknown[], unknown, unknown]
    if (kind !== BinaryKind.BYTES && kind !== BinaryKind.ARRAY_BUFFER)
      return fail(ErrorCode.INVALID_BINARY, 'unknown binary kind')
    const bytes = resolveLeaf(data)
    if (bytes === undefined) return fail(ErrorCode.INVALID_BINARY, 'binary data is missing or not base64')
    const leaf = kind === BinaryKind.ARRAY_BUFFER ? copyToArrayBuffer(bytes) : bytes
    if (!insertBinary(args, path, leaf))
      return fail(ErrorCode.INVALID_BINARY, 'binary path does not lead to a placeholder')
  }
  return undefined
}

function copyToArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  const copy = new Uint8Array(bytes.length)
  copy.set(bytes)
  return copy.buffer
}
