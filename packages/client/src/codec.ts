import {
  ARGS,
  arityCode,
  BINS,
  checkEventName,
  ErrorCode,
  isCount,
  isForbiddenKey,
  type NumberedPacket,
  OPEN_FIELDS,
  PACKET_SHAPES,
  type Packet,
  ParleyError,
} from '@parley/protocol'
import { named } from './options.js'
import * as PacketType from './packet-type.js'
import * as WireLimits from './wire-limits.js'

/*
 * The wire format as a client speaks it: it encodes what a client sends (HELLO, CLOSE, PONG,
 * ACK, EVENT, REPLY) and decodes what a server sends (OPEN, CLOSE, PING, PONG, ACK, EVENT,
 * REPLY, ERROR, MOVED). It writes byte for byte what `@parley/protocol` writes, and refuses what
 * the protocol's decoder refuses, but it is a fraction of its size: the protocol's table of packet
 * shapes (`PACKET_SHAPES`, `OPEN_FIELDS`) serves both directions. The server keeps using
 * `@parley/protocol`.
 */

const isArray = Array.isArray

// ---------------------------------------------------------------------------------------------
// Encoding

type PathStep = string | number
/**
 * The walk's last refusal (too deep or cyclic, a forbidden key): `encode` tells it by identity
 * from a ParleyError the application's own code threw during the walk, which goes out untouched.
 */
let refusal: unknown
/**
 * The last error `encode` made: the session tells by identity a HELLO's own refusal of its auth
 * from the application's ParleyError, which `encode` throws untouched (see Session.hello).
 */
export let made: unknown
/** A binary leaf on the wire: where it was, 0 for a byte view or 1 for an ArrayBuffer, its bytes. */
type Leaf = [path: PathStep[], kind: 0 | 1, bytes: Uint8Array]

/**
 * The packet as a wire array, binary leaves replaced by null and listed in `leaves`.
 * Throws PARLEY_UNSERIALIZABLE past the depth limit (which also stops cycles).
 */
function toWire(packet: Packet, leaves: Leaf[]): unknown[] {
  const type = packet.type
  const shape = PACKET_SHAPES[type]
  if (!shape) {
    const { type: _, ...fields } = packet
    // HELLO: its auth is checked as arguments are (the server refuses the same keys and depth);
    // binary in it is not taken out, JSON.stringify writes it as it always did.
    strip(fields, [], [])
    return [type, fields]
  }
  const wire: unknown[] = [type]
  // An optional field the packet leaves out is left out, and so is BINS, no member of a packet:
  // `encode` and `encodeFrame` write the leaves found in args after the fields.
  for (const field of shape) {
    const value = (packet as unknown as Record<string, unknown>)[field[0]]
    if (value !== undefined) wire.push(field === ARGS ? strip(value, [], leaves) : value)
  }
  return wire
}

/** `value` with each binary leaf swapped for null: a copy where that changed something. */
function strip(value: unknown, path: PathStep[], leaves: Leaf[]): unknown {
  // Most of a payload is numbers and strings: they leave first.
  if (value === null || typeof value !== 'object') return value
  const kind = value instanceof ArrayBuffer ? 1 : ArrayBuffer.isView(value) ? 0 : -1
  if (kind >= 0) {
    // A view's own bytes; an ArrayBuffer has no `buffer` and no `byteOffset` (0).
    // Copied: what is sent, sent again after a resume, is what the caller gave, whatever it
    // writes into its bytes afterwards.
    // Cast where read: a typed copy of `value` is one more variable in the bundle.
    type View = Partial<ArrayBufferView>
    leaves.push([
      [...path],
      kind as 0 | 1,
      new Uint8Array(
        (value as View).buffer ?? (value as ArrayBuffer),
        (value as View).byteOffset,
        (value as View).byteLength,
      ).slice(),
    ])
    return null
  }
  if (path.length > WireLimits.maxDepth) {
    refusal = new ParleyError(ErrorCode.UNSERIALIZABLE, 'too deep or cyclic')
    throw refusal
  }
  // Objects that serialise themselves (Date, ...) are left to JSON.stringify. What their toJSON
  // gives the server refuses as it would any value (too deep, a forbidden key), and would end the
  // session: it is checked here as JSON, where it stands (JSON holds no binary leaf to find).
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    strip((JSON.parse(JSON.stringify([value])) as unknown[])[0], path, leaves)
    return value
  }
  const list = isArray(value)
  let copy: unknown
  for (const key of list ? value.keys() : Object.keys(value)) {
    // The server refuses a packet with such a key (and would end the session): refuse it here.
    if (!list && isForbiddenKey(key as string)) {
      refusal = new ParleyError(ErrorCode.FORBIDDEN_KEY, `payload holds a "${key as string}" key`)
      throw refusal
    }
    const item = (value as Record<PathStep, unknown>)[key]
    path.push(key)
    const stripped = strip(item, path, leaves)
    path.pop()
    if (stripped === item) continue
    copy ??= list ? [...value] : { ...value }
    // A plain store: a key named __proto__, which would set the prototype, was refused above.
    ;(copy as Record<PathStep, unknown>)[key] = stripped
  }
  return copy ?? value
}

/**
 * A packet encoded once, when it is handed over: what the transports send, and send again after a
 * resume, whatever the caller changes in its arguments afterwards. Text transports send `text`,
 * WebSocket sends `frame` when there is one (binary), else `text`.
 */
export interface Encoded {
  /** One line of JSON, binary leaves as base64: what SSE and polling send, and WebSocket without binary. */
  readonly text: string
  /**
   * With binary leaves, what WebSocket sends instead, as a binary frame (`frameOf`): its header
   * (attachment indexes where the text has base64) and copies of the leaves' bytes.
   */
  readonly frame?: Frame
  /** The packet encoded, which a new session numbers anew (see Ledger.welcome). */
  readonly packet: Packet
  /** UTF-8 length of `text`: what a text transport puts on the wire. */
  readonly bytes: number
}

/** A binary frame's header JSON and its attachments. */
export type Frame = readonly [header: string, attachments: readonly Uint8Array[]]

/**
 * A numbered packet as the client hands it over. An answer (REPLY, or ERROR) to a server's
 * request carries the name of the event it answers, off the wire (no shape lists `name` for
 * them): what cannot be sent of it names that event too.
 */
export type Sent = NumberedPacket & { name?: string }

/**
 * `message`, about a packet the client could not send, with the emit it concerns before it:
 * `event "chat": ...` for an EVENT, `reply to "chat": ...` for the answer to a server's `chat`;
 * without a name (a HELLO), `message` alone.
 */
export function about(packet: Packet | Sent, message: string): string {
  const name = (packet as Sent).name
  return name ? aboutEvent(name, packet.type !== PacketType.EVENT) + message : message
}

/**
 * What goes before a message about the event `name` (`event "chat": `, or `reply to "chat": `
 * for an answer to it), as the server's errors have it (`aboutEvent` of @parley/protocol): the
 * name as a JSON string, so that one holding quotes or a line break reads one way, on one line.
 * An arrow, as `utf8Length` is: the bundle writes them in fewer bytes than declarations.
 */
export const aboutEvent = (name: string, reply?: boolean): string =>
  `${reply ? 'reply to' : 'event'} ${JSON.stringify(name)}: `

/**
 * Encodes a packet once, for every transport. Throws PARLEY_UNSERIALIZABLE, PARLEY_FORBIDDEN_KEY,
 * and nothing else.
 */
export function encode(packet: Packet): Encoded {
  const leaves: Leaf[] = []
  let text: string
  try {
    text = JSON.stringify(toWire(packet, leaves))
  } catch (cause) {
    // A ParleyError that the application's own code threw (its toJSON, a getter, a Proxy's trap)
    // is its own refusal, made on purpose: it reaches the caller untouched, its code, message and
    // details as the application made them, as it would from JSON.stringify. The walk's own
    // errors (too deep or cyclic, a forbidden key), told from it by identity, keep their code;
    // anything else (a BigInt, another error of a toJSON, getter or Proxy trap, a revoked Proxy,
    // on which even `instanceof` throws) is a value that cannot be sent, and says why (the
    // engine's words for a BigInt, the message of the application's error). Either way the
    // message names the emit (`about`), where the code alone left the application to find which
    // of its emits, and what in it. A HELLO's auth has no name: `not JSON` alone (the session
    // puts `auth: ` before it). The cause: the walk's error, or what was thrown.
    let coded: boolean | undefined
    try {
      coded = cause instanceof ParleyError
    } catch {}
    if (coded && cause !== refusal) throw cause
    made = new ParleyError(
      coded ? (cause as ParleyError).code : ErrorCode.UNSERIALIZABLE,
      about(
        packet,
        coded
          ? (cause as ParleyError).message
          : (packet as Sent).name
            ? `not JSON (${named(cause, 1)})`
            : 'not JSON',
      ),
      { cause },
    )
    throw made
  }
  let frame: Frame | undefined
  if (leaves.length > 0) {
    // Both forms from one serialisation of the arguments: the list of leaves comes last, with the
    // leaf's base64 in the text and its attachment's index in the frame's header.
    const withLeaves = (data: (leaf: Leaf, i: number) => unknown) =>
      `${text.slice(0, -1)},${JSON.stringify(leaves.map((leaf, i) => [leaf[0], leaf[1], data(leaf, i)]))}]`
    frame = [withLeaves((_, i) => i), leaves.map((leaf) => leaf[2])]
    // `withLeaves` reads the plain text before this assignment replaces it.
    text = withLeaves((leaf) => toBase64(leaf[2]))
  }
  // Named, not spread: V8 copies a spread object with properties added after it on a slow path,
  // which took more of a Node client's CPU per emit than the encoding itself.
  return { text, frame, packet, bytes: utf8Length(text) }
}

/** `encode(packet).text`. */
export function encodeText(packet: Packet): string {
  return encode(packet).text
}

/**
 * A binary frame: u32 header length, the header JSON, then each attachment as u32 length and
 * bytes.
 */
export function frameOf([header, attachments]: Frame): Uint8Array {
  const parts = [new TextEncoder().encode(header), ...attachments]
  let size = 0
  for (const part of parts) size += 4 + part.length
  const frame = new Uint8Array(size)
  const view = new DataView(frame.buffer)
  let at = 0
  for (const part of parts) {
    view.setUint32(at, part.length)
    frame.set(part, at + 4)
    at += 4 + part.length
  }
  return frame
}

/** A WebSocket message: the text when there is no binary, otherwise a binary frame. */
export function encodeFrame(packet: Packet): string | Uint8Array {
  const { text, frame } = encode(packet)
  return frame ? frameOf(frame) : text
}

function toBase64(bytes: Uint8Array): string {
  let text = ''
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  }
  return btoa(text)
}

// ---------------------------------------------------------------------------------------------
// Decoding

/**
 * A decoded packet, or why it was refused. A refused packet whose sequence number could still be
 * read (it was JSON, or its text starts like a numbered packet) carries it as `seq`: the session
 * then acknowledges and drops it, so that a resume never sends it again. Without `seq` the
 * stream itself is broken.
 */
export type DecodeResult = { ok: true; packet: Packet } | Fail

/** What a transport passes up: a packet, or a refused one whose number was read. */
export type Delivered = { ok: true; packet: Packet } | Refused

/** A refused packet whose number was read: the session acknowledges and drops it. */
type Refused = { ok: false; error: ParleyError; seq: number }

/** A refused packet; without `seq` (no such key, see `fail`), a broken stream. Two shapes, told apart by `seq`. */
type Fail = Refused | { ok: false; error: ParleyError; seq?: undefined }

/**
 * A refused packet. With `text`, the refusal carries the packet's number: from its parsed `value`
 * (0 when it is not a numbered packet), else from the start of `text`; when neither gives one,
 * or without `text`, the stream itself is broken. A `cause` comes only with a broken stream.
 */
function fail(code: ErrorCode, message: string, text?: string, value?: unknown, cause?: unknown): Fail {
  // `includes`, not `>=` and `<=`: a comparison would call the valueOf of an object in its place.
  const found =
    text === undefined
      ? undefined
      : value === undefined
        ? // An application packet's start as every encoder writes it: `[5,N,`, `[6,N,` or `[7,N,`.
          /^\[[567],(\d{1,16}),/.exec(text)?.[1]
        : isArray(value) && [5, 6, 7].includes(value[0]) && isCount(value[1])
          ? value[1]
          : 0
  // No `cause` key where there was none (Error would make it an own property, undefined), and no
  // `seq` key for a broken stream.
  if (found === undefined) {
    return { ok: false, error: new ParleyError(code, message, cause === undefined ? undefined : { cause }) }
  }
  const seq = +found
  return { ok: false, error: new ParleyError(code, message, { details: { seq } }), seq }
}

/** Finds the binary leaf that a leaf's data field stands for, or undefined. */
type ResolveLeaf = (data: unknown) => Uint8Array | undefined

/**
 * Canonical padded base64 only (atob alone would also take whitespace and missing padding).
 * The decoder's patterns are written where they are used: a module constant for each cost the
 * browser bundle more than the pattern object made at each use costs a call, and a pattern
 * without the `g` or `y` flag keeps no state from one use to the next.
 */
function fromBase64(data: unknown): Uint8Array | undefined {
  if (
    typeof data !== 'string' ||
    !/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(data)
  )
    return undefined
  const text = atob(data)
  const bytes = new Uint8Array(text.length)
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i)
  return bytes
}

/**
 * Decodes one text packet from the server. Never throws: any input gives either a packet whose
 * every field was checked, or a coded error. Input larger than `maxPayload` in UTF-8 bytes is
 * refused before it is parsed: a UTF-16 unit is 1 to 3 bytes, so only a text of more than a
 * third of it in units is counted. (pastBytes in @parley/protocol also settles a text longer
 * than the limit in units without counting it; the client counts it, a cost only on the way to a
 * refusal, for a smaller bundle.)
 */
export function decodeText(text: string, maxPayload: number = WireLimits.defaultMaxPayload): DecodeResult {
  if (text.length * 3 > maxPayload && utf8Length(text) > maxPayload) {
    return fail(ErrorCode.PAYLOAD_TOO_LARGE, `over ${maxPayload} bytes`, text)
  }
  return decodeJson(text, fromBase64)
}

/**
 * Decodes a WebSocket message: a text frame, or a binary frame as `encodeFrame` makes it. Any
 * other data (a Blob, where the platform ignored `binaryType`) is a frame with no parts.
 * `maxPayload` has no default: its one caller, the WebSocket transport, gives its own.
 */
export function decodeFrame(data: unknown, maxPayload: number): DecodeResult {
  if (typeof data === 'string') return decodeText(data, maxPayload)
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data instanceof ArrayBuffer ? data : [])
  if (bytes.length > maxPayload) {
    const start = new TextDecoder().decode(bytes.subarray(4, 40))
    return fail(ErrorCode.PAYLOAD_TOO_LARGE, `over ${maxPayload} bytes`, start)
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const parts: Uint8Array[] = []
  let text: string
  try {
    // Each part is a u32 length and its bytes. No room for a length (an empty frame among them):
    // getUint32 throws a RangeError; a length past the end: the RangeError below.
    let at = 0
    do {
      const start = at + 4
      at = start + view.getUint32(at)
      if (at > bytes.length) throw new RangeError('part past the end')
      parts.push(bytes.subarray(start, at))
    } while (at < bytes.length)
    // The header; the parts after it are the attachments.
    text = new TextDecoder('utf-8', { fatal: true }).decode(parts.shift())
  } catch (cause) {
    return fail(ErrorCode.INVALID_BINARY, 'bad frame', undefined, undefined, cause)
  }
  let used = 0
  const result = decodeJson(text, (data) => (data === used ? parts[used++] : undefined))
  return result.ok && used !== parts.length
    ? fail(ErrorCode.INVALID_BINARY, 'unused attachment', text)
    : result
}

function decodeJson(text: string, resolveLeaf: ResolveLeaf): DecodeResult {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (cause) {
    return fail(ErrorCode.INVALID_JSON, 'not JSON', undefined, undefined, cause)
  }
  try {
    // Most packets: text too short to nest too deep, with no refused key in it. No walk then.
    // The shortest text that can nest past `walk`'s bound has a bracket pair per level it passes.
    // The keys `walk` refuses, as they appear in JSON text: spelled out, or with a `\u` escape
    // somewhere in them (no other escape can write a letter or `_`).
    const refusal =
      text.length >= 2 * (WireLimits.maxDepth + 3) || /__proto__|constructor|\\u/.test(text)
        ? walk(value, 0)
        : undefined
    const packet: Packet | Refusal = refusal
      ? [refusal, 'too deep or forbidden key']
      : toPacket(value, resolveLeaf)
    return isArray(packet) ? fail(...packet, text, value) : { ok: true, packet }
  } catch (cause) {
    // The checks above leave nothing to throw; this is the promise that nothing ever does.
    return fail(ErrorCode.INVALID_PACKET, 'undecodable', undefined, undefined, cause)
  }
}

/**
 * Bounds the nesting (outer packet array + args array + the application's 64 levels) and
 * refuses `__proto__` and `constructor` keys, which would pollute an application that merges
 * the payload into an object.
 */
function walk(value: unknown, depth: number): ErrorCode | undefined {
  if (!(value instanceof Object)) return undefined
  if (depth > WireLimits.maxDepth + 1) return ErrorCode.TOO_DEEP
  for (const key of Object.keys(value)) {
    if (isForbiddenKey(key)) return ErrorCode.FORBIDDEN_KEY
    const refusal = walk((value as Record<string, unknown>)[key], depth + 1)
    if (refusal) return refusal
  }
  return undefined
}

/** Why a packet is refused: its code, and a message. */
type Refusal = [code: ErrorCode, message: string]

/**
 * Checks a parsed packet against its shape. OPEN is `[0, {fields}]`, checked against OPEN_FIELDS,
 * all required: its fields are read into an array first, as every other packet has them,
 * `[type, ...fields]`, which is then read in place.
 */
function toPacket(value: unknown, resolveLeaf: ResolveLeaf): Packet | Refusal {
  if (!isArray(value) || value.length === 0) return [ErrorCode.INVALID_PACKET, 'not a packet']
  let fields: unknown[] = value
  const type: unknown = value[0]
  let shape = typeof type === 'number' ? PACKET_SHAPES[type] : undefined
  if (type === PacketType.OPEN) {
    const open = value[1] as Record<string, unknown>
    if (value.length !== 2 || !(open instanceof Object)) return [ErrorCode.INVALID_PACKET, 'bad OPEN']
    shape = OPEN_FIELDS
    fields = [type, ...shape.map(([name]) => open[name])]
  }
  // No HELLO among the shapes: only a server receives one.
  if (!shape) return [ErrorCode.UNKNOWN_PACKET_TYPE, 'unknown type']
  const count = fields.length - 1
  // Only the last field may be left out.
  if (count !== shape.length && (count !== shape.length - 1 || !shape[count]?.[3])) {
    return [arityCode(type as number), `type ${type}: ${count} fields`]
  }
  const packet: Record<string, unknown> = { type }
  let i = 0
  for (const entry of shape.slice(0, count)) {
    const [name, check, code = ErrorCode.INVALID_PACKET] = entry
    const field = fields[++i]
    const verdict = check(field)
    if (verdict !== true) {
      // An event name keeps checkEventName's own words (which name, and why).
      const badName = name === 'name' && checkEventName(field)
      return badName ? [badName.code, badName.message] : [verdict || code, `type ${type}: bad ${name}`]
    }
    if (entry !== BINS) packet[name] = field
    // Every other field is checked by now, args among them.
    else if (!fillBinary(packet.args as unknown[], field as unknown[], resolveLeaf)) {
      return [ErrorCode.INVALID_BINARY, 'bad binary leaf']
    }
  }
  return packet as unknown as Packet
}

/**
 * Puts the binary leaves `[path, kind, data]` back into `args`; false if one of them is bad. A
 * path leads through own elements of arrays (number steps) and own keys of objects (string
 * steps) to a null placeholder; anything else is a crafted packet. (No bound on a path's length:
 * one longer than the nesting `walk` allows cannot reach a placeholder.)
 */
function fillBinary(args: unknown[], bins: unknown[], resolveLeaf: ResolveLeaf): boolean {
  for (const entry of bins) {
    const [path, kind, data] = isArray(entry) && entry.length === 3 ? entry : []
    const bytes = (kind === 0 || kind === 1) && resolveLeaf(data)
    if (!bytes || !isArray(path)) return false
    let parent!: Record<PathStep, unknown>
    let node: unknown = args
    let step: unknown
    for (step of path) {
      if (
        !(node instanceof Object) ||
        typeof step !== (isArray(node) ? 'number' : 'string') ||
        !Object.hasOwn(node, step as PathStep)
      ) {
        return false
      }
      parent = node as Record<PathStep, unknown>
      node = parent[step as PathStep]
    }
    // An empty path ends at args itself, which is no placeholder.
    if (node !== null) return false
    parent[step as PathStep] = kind === 1 ? bytes.slice().buffer : bytes
  }
  return true
}

/** Bytes of a string in UTF-8. */
export const utf8Length = (text: string): number => {
  // Node counts without a copy (encoding one only to count it was a twentieth of a Node client's
  // CPU in an echo). The browser bundle leaves this branch out.
  if (!(globalThis as { PARLEY_BROWSER_BUNDLE?: boolean }).PARLEY_BROWSER_BUNDLE) {
    const buffer = (globalThis as { Buffer?: { byteLength(text: string): number } }).Buffer
    if (buffer) return buffer.byteLength(text)
  }
  return new TextEncoder().encode(text).length
}
