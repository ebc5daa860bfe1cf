import { ErrorCode, isCloseReason } from './errors.js'
import { checkEventName } from './event-name.js'
import { isTransportName, type Packet, type PacketType } from './packets.js'

/*
 * The shape of every packet, written once: the protocol's decoder walks these tables, and so do
 * the client's lean encoder and decoder. Plain literals of plain functions, so that a bundler
 * keeps only what its importer uses (the browser bundle counts every byte).
 */

/**
 * A field's check: true when the value is fine; otherwise false (refused with the field's code)
 * or a more precise code of its own (an event name that is reserved, rather than malformed).
 */
export type FieldCheck = (value: unknown) => boolean | ErrorCode

/**
 * One field of a packet: its name in the packet object, its check, the code it is refused with
 * (INVALID_PACKET when left out: most fields, and the browser bundle counts every byte).
 * `optional` marks the one field a packet may leave out: the last one of an array-shaped packet.
 */
export type Field = readonly [name: string, check: FieldCheck, code?: ErrorCode, optional?: true]

const { INVALID_PACKET, INVALID_SEQ, INVALID_ACK_ID, INVALID_BINARY } = ErrorCode

/** A non-negative safe integer: sequence numbers, acks, ack ids, milliseconds. */
export const isCount = (value: unknown): value is number =>
  Number.isSafeInteger(value) && (value as number) >= 0
/** A positive safe integer. */
export const isPositive = (value: unknown): value is number => isCount(value) && value > 0
const isString = (value: unknown) => typeof value === 'string'
const isArray = Array.isArray

// The two patterns below are written in their checks: as constants of the module they cost the
// client's browser bundle their declarations, more than a pattern object made per call costs it
// (with no `g` or `y` flag, a pattern keeps no state between calls).

/** True for a session id or a socket id: 1 to 64 URL-safe characters (`A-Z a-z 0-9 _ -`). */
export function isSid(value: unknown): value is string {
  return typeof value === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(value)
}

/**
 * True for an error code as it crosses the wire, in an ERROR packet or an HTTP error body: 1 to
 * 64 of `A-Z 0-9 _`. Parley's own codes have that form, and the server sends an application's
 * own (a middleware's refusal, a handler's error) only in it, else PARLEY_HANDLER_ERROR or
 * PARLEY_REFUSED; the client answers the server's requests with Parley's codes alone. So no
 * Parley peer sends another, and a code in another form (empty, lower case, a proxy's
 * `rate_limited`) is no peer's word: the decoders refuse the ERROR that carries it, and the
 * client reads such a body as one without a code.
 */
export function isWireCode(value: unknown): value is string {
  return typeof value === 'string' && /^[A-Z0-9_]{1,64}$/.test(value)
}

/** EVENT's and REPLY's arguments: where their binary leaves go back. */
export const ARGS: Field = ['args', isArray]
const message: Field = ['message', isString]

/**
 * EVENT's and REPLY's optional last field: the binary leaves taken out of `args`, a non-empty
 * list of `[path, kind, data]`. It is no field of the packet object: a decoder puts each leaf
 * back into `args` (and checks its entries), an encoder writes it only when there are leaves.
 */
export const BINS: Field = ['bins', (v) => isArray(v) && v.length > 0, INVALID_BINARY, true]

/** The packet types written as `[type, ...fields]`; OPEN and HELLO are `[type, {fields}]`. */
export type ArrayPacketType = Exclude<PacketType, typeof PacketType.OPEN | typeof PacketType.HELLO>

/**
 * The fields of every array-shaped packet after its type, in wire order, by packet type. A
 * decoder checks them in that order, so the first bad field names the code. `seq` and `ackId`
 * are written in each shape: as shared constants they cost the client's browser bundle their
 * declarations (ARGS and BINS stay shared, as the codecs know them by identity).
 */
export const PACKET_SHAPES: Readonly<Record<number, readonly Field[]>> = {
  // CLOSE
  1: [['reason', isCloseReason], message, ['retryAfter', isCount, INVALID_PACKET, true]],
  // PING
  2: [],
  // PONG
  3: [],
  // ACK
  4: [['ack', isCount, INVALID_SEQ]],
  // EVENT: checkEventName gives the name's code, INVALID_EVENT_NAME or RESERVED_EVENT_NAME.
  5: [
    ['seq', isCount, INVALID_SEQ],
    ['name', (v) => checkEventName(v)?.code ?? true],
    ARGS,
    ['ackId', isCount, INVALID_ACK_ID],
    BINS,
  ],
  // REPLY
  6: [['seq', isPositive, INVALID_SEQ], ['ackId', isPositive, INVALID_ACK_ID], ARGS, BINS],
  // ERROR: seq 0 is the one unnumbered ERROR, the answer to a refused HELLO.
  7: [['seq', isCount, INVALID_SEQ], ['ackId', isCount, INVALID_ACK_ID], ['code', isWireCode], message],
  // MOVED
  9: [],
} satisfies { readonly [T in ArrayPacketType]: readonly Field[] }

/**
 * A packet whose every field its shape has checked, as the array it came in: `[type, ...fields]`.
 * Its fields are typed `never` so that a builder can put them in any field of its packet.
 */
export type CheckedFields = readonly [type: unknown, never, never, never, never, never?]

/**
 * How each array-shaped packet becomes its object once its shape has checked it: field `i` of
 * `PACKET_SHAPES[type]` becomes the member of that name, from `fields[1 + i]` (`bins` aside: it
 * is put back into `args`). One literal per type, so that every packet of a type gets one hidden
 * class; a loop of stores by name would cost the server's decoder about a sixth of its time.
 * A test holds the builders to the shapes. The client's decoder, which counts bytes rather than
 * nanoseconds, stores by name instead.
 */
export const PACKET_BUILDERS: Readonly<Record<number, (fields: CheckedFields) => Packet>> = {
  1: (f) =>
    f[3] === undefined
      ? { type: 1, reason: f[1], message: f[2] }
      : { type: 1, reason: f[1], message: f[2], retryAfter: f[3] },
  2: () => ({ type: 2 }),
  3: () => ({ type: 3 }),
  4: (f) => ({ type: 4, ack: f[1] }),
  5: (f) => ({ type: 5, seq: f[1], name: f[2], args: f[3], ackId: f[4] }),
  6: (f) => ({ type: 6, seq: f[1], ackId: f[2], args: f[3] }),
  7: (f) => ({ type: 7, seq: f[1], ackId: f[2], code: f[3], message: f[4] }),
  9: () => ({ type: 9 }),
} satisfies { readonly [T in ArrayPacketType]: (fields: CheckedFields) => Extract<Packet, { type: T }> }

/**
 * The code for an array-shaped packet with too few or too many fields: INVALID_PACKET, except
 * for ACK, whose one field is a sequence number, so that a bad ACK is INVALID_SEQ however it is bad.
 */
export const arityCode = (type: number): ErrorCode => (type === 4 ? INVALID_SEQ : INVALID_PACKET)

/** OPEN's fields (`[0, {fields}]`), all required. */
export const OPEN_FIELDS: readonly Field[] = [
  ['sid', isSid],
  ['id', isSid],
  ['pingInterval', isPositive],
  ['pingTimeout', isPositive],
  ['maxPayload', isPositive],
  ['transports', (v) => isArray(v) && v.every(isTransportName)],
  ['recovered', (v) => typeof v === 'boolean'],
  ['ack', isCount],
]

/**
 * HELLO's fields (`[8, {fields}]`), all optional. `auth` is any JSON the application's middleware
 * checks. `ack` belongs to `sid`: it is read only with a `sid`, and then defaults to 0.
 * `closeAck`: the client reads an ACK before the CLOSE that answers a resume of an ended session.
 */
export const HELLO_FIELDS: readonly Field[] = [
  ['auth', () => true, INVALID_PACKET, true],
  ['sid', isSid, INVALID_PACKET, true],
  ['ack', isCount, INVALID_SEQ, true],
  ['closeAck', (v) => typeof v === 'boolean', INVALID_PACKET, true],
]
