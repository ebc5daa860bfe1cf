import type { CloseReason } from './errors.js'

/** The protocol version this package speaks. Every handshake carries it. */
export const PROTOCOL_VERSION = 1
/** The WebSocket subprotocol for this version. */
export const WS_SUBPROTOCOL = `parley.v${PROTOCOL_VERSION}`

/** Every transport of the protocol, in the order a client tries them by default. */
export const TRANSPORTS = ['websocket', 'sse', 'polling'] as const
/** `'websocket'`, `'sse'` or `'polling'`. */
export type TransportName = (typeof TRANSPORTS)[number]

/**
 * True for one of the names of `TRANSPORTS`: a check for a name read from the wire or a URL. Read
 * from the list rather than naming each again: the browser client's bundle holds it anyway.
 */
export function isTransportName(value: unknown): value is TransportName {
  return TRANSPORTS.includes(value as TransportName)
}

/**
 * Packet types, as they appear in the first element of every packet on the wire.
 * The numbers are part of the protocol; never renumber.
 */
export const PacketType = {
  OPEN: 0,
  CLOSE: 1,
  PING: 2,
  PONG: 3,
  ACK: 4,
  EVENT: 5,
  REPLY: 6,
  ERROR: 7,
  HELLO: 8,
  MOVED: 9,
} as const

export type PacketType = (typeof PacketType)[keyof typeof PacketType]

/** Any value that JSON can carry, plus binary leaves anywhere in it. */
export type WireValue =
  | string
  | number
  | boolean
  | null
  | Uint8Array
  | ArrayBuffer
  | WireValue[]
  | { [key: string]: WireValue }

/** A value that JSON carries as it is: what `auth` and the OPEN fields are made of. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue }

/** Client → server, first packet of every transport attach: who I am and what I have seen. */
export interface HelloPacket {
  type: typeof PacketType.HELLO
  /** The application's credentials, checked by the server's middleware. */
  auth?: JsonValue
  /** Set to resume an existing session. */
  sid?: string
  /** With `sid`: the highest server sequence number the client has received. */
  ack?: number
  /**
   * True when the client reads an ACK before the CLOSE that answers a resume of a session that
   * has ended: the server then sends that session's last ACK first (see docs/protocol.md).
   */
  closeAck?: boolean
}

/** Server → client: the session is open (or resumed) on this transport. */
export interface OpenPacket {
  type: typeof PacketType.OPEN
  /**
   * The session id: a bearer secret (whoever holds it can resume the session). The client keeps
   * it to itself and sends it back only in HELLO.
   */
  sid: string
  /**
   * The socket's public id: the name other clients and the server's application know this
   * socket by (and the room every socket is in). Safe to show; it resumes nothing. A resumed
   * session keeps it; a new session gets a new one.
   */
  id: string
  /** Milliseconds between server pings. */
  pingInterval: number
  /** Milliseconds the server waits for any packet after a ping before it gives up. */
  pingTimeout: number
  /** Largest packet (and HTTP body) either side may send, in bytes. */
  maxPayload: number
  /** Transports the server allows, in its order of preference. */
  transports: TransportName[]
  /** True when an existing session was resumed with nothing lost. */
  recovered: boolean
  /** The highest client sequence number the server has received (0 for a new session). */
  ack: number
}

/**
 * The session ends (a transport closing does not end it). Either side may send it; the server's
 * `retryAfter` tells a client that starts again how long to wait first.
 */
export interface ClosePacket {
  type: typeof PacketType.CLOSE
  reason: CloseReason
  /** Words for people: why, in the sender's terms. */
  message: string
  /** A hint, in milliseconds, for when the client should try to reconnect. */
  retryAfter?: number
}

/** Server → client heartbeat; the client answers PONG. */
export interface PingPacket {
  type: typeof PacketType.PING
}
/** Client → server: the answer to a PING. */
export interface PongPacket {
  type: typeof PacketType.PONG
}

/** Cumulative acknowledgement: every numbered message up to and including `ack` arrived. */
export interface AckPacket {
  type: typeof PacketType.ACK
  ack: number
}

/** An application event. `seq` 0 marks a volatile event (not numbered, never replayed). */
export interface EventPacket {
  type: typeof PacketType.EVENT
  seq: number
  name: string
  args: WireValue[]
  /** Positive when the sender wants a reply; 0 otherwise. */
  ackId: number
}

/** The reply to an event that asked for one. */
export interface ReplyPacket {
  type: typeof PacketType.REPLY
  seq: number
  ackId: number
  args: WireValue[]
}

/**
 * An application-level error: the reply to an event that failed (`ackId` > 0), or a notice
 * about an event that asked for no reply (`ackId` 0), such as a failed validation.
 * With `seq` 0 (unnumbered) it answers a HELLO that the server refused.
 */
export interface ErrorPacket {
  type: typeof PacketType.ERROR
  seq: number
  ackId: number
  code: string
  message: string
}

/** Server → client on a transport that another transport of the same session replaced. */
export interface MovedPacket {
  type: typeof PacketType.MOVED
}

/** Any packet of the protocol, told apart by `type` (see `PacketType`). */
export type Packet =
  | HelloPacket
  | OpenPacket
  | ClosePacket
  | PingPacket
  | PongPacket
  | AckPacket
  | EventPacket
  | ReplyPacket
  | ErrorPacket
  | MovedPacket

/** Packets that carry a sequence number and so take part in ordered, exactly-once delivery. */
export type NumberedPacket = EventPacket | ReplyPacket | ErrorPacket

/** True for packets that take part in ordered, exactly-once delivery (a positive `seq`). */
export function isNumbered(packet: Packet): packet is NumberedPacket {
  return (
    (packet.type === PacketType.EVENT ||
      packet.type === PacketType.REPLY ||
      packet.type === PacketType.ERROR) &&
    packet.seq > 0
  )
}

/**
 * Event names the application may not send: they name lifecycle events on the sockets, and an
 * incoming event of that name must never be mistaken for one.
 */
export const RESERVED_EVENTS: ReadonlySet<string> = new Set([
  'connect',
  'connect_error',
  'disconnect',
  'disconnecting',
  'error',
  'transport',
  'transport_error',
  'reconnect',
  'reconnect_attempt',
  'reconnect_failed',
  'newListener',
  'removeListener',
])

/**
 * `WireLimits.maxEventNameLength`, on its own for checkEventName: a bundler writes a constant as
 * its number, where reading it from the object would take the object into the client's bundle.
 */
export const MAX_EVENT_NAME_LENGTH = 256

/** Limits of the wire format itself, the same for every peer. */
export const WireLimits = {
  /** Longest event name, in UTF-16 units. */
  maxEventNameLength: MAX_EVENT_NAME_LENGTH,
  /** Deepest nesting of arrays and objects the codec walks. */
  maxDepth: 64,
  /** Default largest packet, in bytes. */
  defaultMaxPayload: 1_000_000,
} as const
