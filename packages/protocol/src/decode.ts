import { eventNameAtHead, namedAfterEvent } from './about-event.js'
import { fromBase64 } from './base64.js'
import { BinaryKind, insertBinary } from './binary.js'
import { ErrorCode, ParleyError } from './errors.js'
import { checkEventName, isForbiddenKey } from './event-name.js'
import { type Packet, PacketType, WireLimits } from './packets.js'
import {
  ARGS,
  arityCode,
  BINS,
  type CheckedFields,
  type Field,
  HELLO_FIELDS,
  OPEN_FIELDS,
  PACKET_BUILDERS,
  PACKET_SHAPES,
} from './shapes.js'
import { pastBytes, utf8Length } from './utf8.js'

export { isSid } from './shapes.js'

/** One decoded packet, or the coded error that says why the input is not one: never a throw. */
export type DecodeResult = { ok: true; packet: Packet } | { ok: false; error: ParleyError }
/** The packets of a body of several lines, or the error of the first line that does not decode. */
export type DecodeBatchResult = { ok: true; packets: Packet[] } | { ok: false; error: ParleyError }

/** What a decoder accepts. */
export interface DecodeOptions {
  /**
   * Largest accepted input, in UTF-8 bytes (a text's bytes on the wire, not its UTF-16 length);
   * larger input is refused before it is parsed.
   */
  maxPayload?: number
}

/**
 * Decodes one text packet. Never throws: any input, however hostile, gives either a packet
 * whose every field has been checked, or a coded error. An EVENT refused for what follows its
 * head (too large, too deep, a forbidden key, not JSON past its name) says which event, as read
 * from its head alone (`event "chat": packet is nested deeper than 64 levels`).
 */
export function decodeText(text: string, options?: DecodeOptions): DecodeResult {
  const result = decodeTextAsIs(text, options)
  return result.ok || typeof text !== 'string' ? result : namedAtHead(result, text)
}

function decodeTextAsIs(text: string, options?: DecodeOptions): DecodeResult {
  try {
    if (typeof text !== 'string') return fail(ErrorCode.INVALID_PACKET, 'packet is not text')
    const limit = options?.maxPayload ?? WireLimits.defaultMaxPayload
    if (pastBytes(text, limit))
      return fail(ErrorCode.PAYLOAD_TOO_LARGE, `packet is larger than ${limit} bytes`)
    const parsed = parseJson(text)
    if (!parsed.ok) return parsed
    return toPacket(parsed.value, (data) => (typeof data === 'string' ? fromBase64(data) : undefined))
  } catch (cause) {
    return fail(ErrorCode.INVALID_PACKET, 'packet could not be decoded', cause)
  }
}

/**
 * Decodes a WebSocket message: a text frame, or a binary frame as `encodeFrame` makes it. A
 * refused EVENT names its event as `decodeText` does, from the head of a binary frame's header.
 */
export function decodeFrame(data: string | Uint8Array | ArrayBuffer, options?: DecodeOptions): DecodeResult {
  if (typeof data === 'string') return decodeText(data, options)
  const result = decodeBinaryFrame(data, options)
  return result.ok ? result : namedAtHead(result, headerHead(data))
}

function decodeBinaryFrame(data: Uint8Array | ArrayBuffer, options?: DecodeOptions): DecodeResult {
  try {
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : data
    if (!(bytes instanceof Uint8Array))
      return fail(ErrorCode.INVALID_PACKET, 'frame is neither text nor bytes')
    const limit = options?.maxPayload ?? WireLimits.defaultMaxPayload
    if (bytes.length > limit) return fail(ErrorCode.PAYLOAD_TOO_LARGE, `frame is larger than ${limit} bytes`)
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
  return decodeLines(body.split('\n'), options)
}

/**
 * `decodeBatch` for a body already cut into its lines (empty ones are skipped), as a server
 * that reads a long body line by line has it: one string per packet, never the whole body as
 * one.
 */
export function decodeLines(lines: readonly string[], options?: DecodeOptions): DecodeBatchResult {
  const packets: Packet[] = []
  for (const line of lines) {
    if (line === '') continue
    const result = decodeText(line, options)
    if (!result.ok) return result
    packets.push(result.packet)
  }
  if (packets.length === 0) return fail(ErrorCode.INVALID_PACKET, 'body holds no packet')
  return { ok: true, packets }
}

/**
 * What a conforming peer would refuse in a packet this side encoded, or undefined: larger than
 * `maxPayload` in UTF-8 bytes, nested deeper than the wire allows, or holding a `__proto__` /
 * `constructor` key. A sender checks before it sends, so that a packet the receiver must refuse
 * is refused at the call site, with a coded error, instead of on the wire. Cheap for the common
 * packet: a length test and three searches for text; the bytes are counted, and the walks run,
 * only when those cannot rule it out.
 */
export function checkEncoded(text: string, maxPayload: number): ParleyError | undefined {
  if (pastBytes(text, maxPayload)) {
    const size = utf8Length(text)
    return new ParleyError(
      ErrorCode.PAYLOAD_TOO_LARGE,
      `the packet is ${size} bytes, past maxPayload (${maxPayload} bytes)`,
      { details: { limit: maxPayload, size } },
    )
  }
  const maxNesting = WireLimits.maxDepth + 2
  if (text.length >= 2 * (maxNesting + 1) && exceedsDepth(text, maxNesting)) {
    return new ParleyError(
      ErrorCode.TOO_DEEP,
      `the payload is nested deeper than ${WireLimits.maxDepth} levels`,
    )
  }
  if (mayHoldForbiddenKey(text)) {
    const parsed = parseJson(text)
    if (!parsed.ok) return parsed.error
  }
  return undefined
}

/**
 * Text that may hold a refused key: spelled out, or with a `\u` escape somewhere in it. Three
 * native searches: one regular expression with the three as alternatives scanned a megabyte
 * about ten times slower, nearly a `JSON.parse` of it.
 */
function mayHoldForbiddenKey(text: string): boolean {
  return text.includes('__proto__') || text.includes('constructor') || text.includes('\\u')
}

// ---------------------------------------------------------------------------------------------

type Fail = { ok: false; error: ParleyError }

/** A refusal of the packet whose text begins `head`, naming its event when the head reads as one. */
function namedAtHead(refused: Fail, head: string): Fail {
  const name = eventNameAtHead(head)
  return name === undefined ? refused : { ok: false, error: namedAfterEvent(refused.error, name) }
}

/** Bytes of a binary frame's header read for its head: enough for any event name, escaped. */
const FRAME_HEAD_BYTES = 4096

/**
 * The start of a binary frame's header as text ('' when there is none to read), whatever the
 * frame's length: for `namedAtHead`. A character cut at the end turns into U+FFFD, after the
 * name's closing quote if the name fits. Never throws.
 */
function headerHead(data: Uint8Array | ArrayBuffer): string {
  try {
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : data
    if (!(bytes instanceof Uint8Array) || bytes.length < 4) return ''
    const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0)
    const end = 4 + Math.min(length, FRAME_HEAD_BYTES, bytes.length - 4)
    return new TextDecoder().decode(bytes.subarray(4, end))
  } catch {
    return ''
  }
}

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
  if (mayHoldForbiddenKey(text) && hasForbiddenKey(value)) {
    return fail(ErrorCode.FORBIDDEN_KEY, 'packet holds a "__proto__" or "constructor" key')
  }
  return { ok: true, value }
}

function tooDeep(): Fail {
  return fail(ErrorCode.TOO_DEEP, `packet is nested deeper than ${WireLimits.maxDepth} levels`)
}

/**
 * A linear scan of the JSON text, so that nesting is bounded before anything walks it. Text
 * with no more than `max` opening brackets in all (inside strings too) cannot nest deeper, and
 * most packets have a handful: counting them with `indexOf` (a native search) costs a fraction
 * of the character loop, which then runs only for text with many.
 */
function exceedsDepth(text: string, max: number): boolean {
  if (openingsAtMost(text, max)) return false
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

function openingsAtMost(text: string, max: number): boolean {
  let count = 0
  for (let i = text.indexOf('['); i !== -1; i = text.indexOf('[', i + 1)) if (++count > max) return false
  for (let i = text.indexOf('{'); i !== -1; i = text.indexOf('{', i + 1)) if (++count > max) return false
  return true
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

/** The shortest binary leaf a header can hold: `[[],0,0]`. */
const MIN_LEAF_BYTES = 8

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
  // Each attachment is referred to by a leaf of the header, `[path, kind, index]`, at least
  // MIN_LEAF_BYTES of it. Past that count, the frame is refused before its attachments become
  // objects: a zero-length one is 4 bytes on the wire and some 100 bytes of heap.
  const most = headerLength / MIN_LEAF_BYTES
  let offset = 4 + headerLength
  while (offset < bytes.length) {
    if (attachments.length >= most)
      return fail(ErrorCode.INVALID_BINARY, 'frame carries more attachments than its header refers to')
    if (offset + 4 > bytes.length) return fail(ErrorCode.INVALID_BINARY, 'attachment length is truncated')
    const length = view.getUint32(offset)
    if (length > bytes.length - offset - 4) return fail(ErrorCode.INVALID_BINARY, 'attachment is truncated')
    attachments.push(bytes.subarray(offset + 4, offset + 4 + length))
    offset += 4 + length
  }
  return { ok: true, header, attachments }
}

// ---------------------------------------------------------------------------------------------
// Shapes: every packet is checked against its entry in ./shapes.ts.

type ResolveLeaf = (data: unknown) => Uint8Array | undefined

function toPacket(value: unknown, resolveLeaf: ResolveLeaf): DecodeResult {
  if (!Array.isArray(value) || value.length === 0)
    return fail(ErrorCode.INVALID_PACKET, 'packet is not a non-empty array')
  const type: unknown = value[0]
  if (type === PacketType.OPEN || type === PacketType.HELLO) return decodeObject(type, value)
  const shape = typeof type === 'number' ? PACKET_SHAPES[type] : undefined
  if (shape === undefined) {
    return fail(ErrorCode.UNKNOWN_PACKET_TYPE, `unknown packet type ${JSON.stringify(type)?.slice(0, 32)}`)
  }
  // Only the last field may be optional; the fields are read in place, `value[i]`.
  const last = shape.length
  const fields = value.length - 1
  if (fields !== last && (fields !== last - 1 || last === 0 || shape[last - 1]![3] !== true)) {
    return fail(arityCode(type as number), `packet type ${type} has ${fields} fields`)
  }
  for (let i = 1; i <= fields; i++) {
    const field = shape[i - 1]!
    const verdict = field[1](value[i])
    if (verdict !== true) return refuse(type, field, verdict, value[i])
  }
  // Checked: only the binary list's entries are left to check, as they go back into args.
  if (fields === last && shape[last - 1] === BINS) {
    const args = value[1 + shape.indexOf(ARGS)] as unknown[]
    const refusal = fillBinary(args, value[last] as unknown[], resolveLeaf)
    if (refusal) return refusal
  }
  return { ok: true, packet: PACKET_BUILDERS[type as number]!(value as unknown as CheckedFields) }
}

/**
 * A field that failed its check: with the code the check gave, else the field's own. An event
 * name keeps checkEventName's own words (which name, and why).
 */
function refuse(type: unknown, field: Field, verdict: false | ErrorCode, value: unknown): Fail {
  const badName = field[0] === 'name' ? checkEventName(value) : undefined
  if (badName) return { ok: false, error: badName }
  return fail(verdict || (field[2] ?? ErrorCode.INVALID_PACKET), `packet type ${type}: bad ${field[0]}`)
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/** OPEN and HELLO: `[type, {fields}]`, by OPEN_FIELDS (all required) or HELLO_FIELDS (none). */
function decodeObject(
  type: typeof PacketType.OPEN | typeof PacketType.HELLO,
  value: unknown[],
): DecodeResult {
  const fields = value[1]
  if (value.length !== 2 || !isRecord(fields))
    return fail(ErrorCode.INVALID_PACKET, `packet type ${type} is [${type}, {fields}]`)
  const packet: Record<string, unknown> = { type }
  for (const field of type === PacketType.OPEN ? OPEN_FIELDS : HELLO_FIELDS) {
    const [name, check, , optional] = field
    const item = fields[name]
    // A HELLO's ack is about the session it resumes: without a sid there is none.
    if (optional && (item === undefined || (name === 'ack' && packet.sid === undefined))) continue
    const verdict = check(item)
    if (verdict !== true) return refuse(type, field, verdict, item)
    packet[name] = item
  }
  if (type === PacketType.HELLO && packet.sid !== undefined) packet.ack ??= 0
  return { ok: true, packet: packet as unknown as Packet }
}

/** Puts the packet's binary leaves back into `args`; returns a failure or undefined. */
function fillBinary(args: unknown[], bins: unknown[], resolveLeaf: ResolveLeaf): Fail | undefined {
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
