// What crosses Redis between nodes, and how it is read back. Every message is one JSON text on
// a channel; events and values inside it are in the protocol's own text encoding (binary leaves
// as base64), so that what a client sent arrives on another node as it left, bytes included.
// Input is read as untrusted: a malformed message is dropped, never thrown on.
import { decodeText, encodeText, PacketType, type WireValue } from '@parley/protocol'
import type { BroadcastOptions, Room, SocketDescription } from '@parley/server'

/** Which sockets, as shipped (`local` never crosses: a local operation stays on its node). */
export interface WireOptions {
  /** rooms */
  r: Room[]
  /** except */
  x: Room[]
  /** volatile */
  v: boolean
}

/** On `<prefix>:broadcast`: an event for every node but the sender. */
export interface BroadcastPacket {
  /** The sending node. */
  n: string
  /** The event, as `PreparedEvent.text(0, 0)`. */
  e: string
  o: WireOptions
}

export type RequestKind = 'fetch' | 'join' | 'leave' | 'disconnect' | 'ack'

/** On `<prefix>:request`: a cluster query; every other node answers on the sender's response channel. */
export interface RequestPacket {
  n: string
  id: string
  k: RequestKind
  o: WireOptions
  /** Rooms to join or leave ('join', 'leave'). */
  rooms?: Room[]
  /** The event ('ack'). */
  e?: string
  /** Milliseconds each socket has to reply ('ack'). */
  t?: number
}

/** On `<prefix>:response:<node>`: one node's answer to a request of that node. */
export type ResponsePacket =
  | { n: string; id: string; k: 'sockets'; s: string[] }
  | { n: string; id: string; k: 'done' }
  | { n: string; id: string; k: 'count'; c: number }
  | { n: string; id: string; k: 'reply'; ok: true; v: string }
  | { n: string; id: string; k: 'reply'; ok: false; code: string; message: string }

// Decoding limits are for hostile clients; these texts come from nodes of the same cluster, whose
// senders already checked them against their own maxPayload.
const NO_LIMIT = { maxPayload: Number.MAX_SAFE_INTEGER }

export function toWireOptions(options: BroadcastOptions): WireOptions {
  return { r: [...options.rooms], x: [...options.except], v: options.volatile }
}

export function fromWireOptions(options: WireOptions): BroadcastOptions {
  return { rooms: new Set(options.r), except: new Set(options.x), volatile: options.v, local: true }
}

/** An event's name and arguments from `PreparedEvent.text(0, 0)`, or undefined when it is not one. */
export function decodeEvent(text: string): { name: string; args: WireValue[] } | undefined {
  const result = decodeText(text, NO_LIMIT)
  if (!result.ok || result.packet.type !== PacketType.EVENT) return undefined
  return { name: result.packet.name, args: result.packet.args }
}

/** Any value a reply or a socket's data may hold, binary included. Throws when JSON cannot carry it. */
export function packValue(value: unknown): string {
  return encodeText({ type: PacketType.REPLY, seq: 1, ackId: 1, args: [value as WireValue] })
}

/** The value `packValue` packed; `{ ok: false }` when the text is not one. */
export function unpackValue(text: string): { ok: true; value: unknown } | { ok: false } {
  const result = decodeText(text, NO_LIMIT)
  if (!result.ok || result.packet.type !== PacketType.REPLY) return { ok: false }
  return { ok: true, value: result.packet.args[0] }
}

/** A socket's description as it crosses; `data` that JSON cannot carry is left out. */
export function packSocket(socket: SocketDescription): string {
  const plain = { id: socket.id, handshake: socket.handshake, rooms: [...socket.rooms] }
  try {
    return packValue({ ...plain, data: socket.data })
  } catch {
    return packValue(plain)
  }
}

export function unpackSocket(text: string): SocketDescription | undefined {
  const unpacked = unpackValue(text)
  if (!unpacked.ok || !isRecord(unpacked.value)) return undefined
  const { id, handshake, rooms, data } = unpacked.value
  if (typeof id !== 'string' || !isRecord(handshake) || !isStrings(rooms)) return undefined
  return {
    id,
    handshake: handshake as unknown as SocketDescription['handshake'],
    rooms: new Set(rooms),
    data,
  }
}

/** A broadcast packet, or undefined for anything else. */
export function parseBroadcast(text: string): BroadcastPacket | undefined {
  const value = parseJson(text)
  if (!isRecord(value) || typeof value.n !== 'string' || typeof value.e !== 'string') return undefined
  return isWireOptions(value.o) ? (value as unknown as BroadcastPacket) : undefined
}

export function parseRequest(text: string): RequestPacket | undefined {
  const value = parseJson(text)
  if (!isRecord(value) || typeof value.n !== 'string' || typeof value.id !== 'string') return undefined
  if (!isWireOptions(value.o)) return undefined
  switch (value.k) {
    case 'fetch':
    case 'disconnect':
      break
    case 'join':
    case 'leave':
      if (!isStrings(value.rooms)) return undefined
      break
    case 'ack':
      if (typeof value.e !== 'string' || !isTimeout(value.t)) return undefined
      break
    default:
      return undefined
  }
  return value as unknown as RequestPacket
}

export function parseResponse(text: string): ResponsePacket | undefined {
  const value = parseJson(text)
  if (!isRecord(value) || typeof value.n !== 'string' || typeof value.id !== 'string') return undefined
  const fits =
    (value.k === 'sockets' && isStrings(value.s)) ||
    value.k === 'done' ||
    (value.k === 'count' && typeof value.c === 'number' && Number.isSafeInteger(value.c) && value.c >= 0) ||
    (value.k === 'reply' && value.ok === true && typeof value.v === 'string') ||
    (value.k === 'reply' &&
      value.ok === false &&
      typeof value.code === 'string' &&
      typeof value.message === 'string')
  return fits ? (value as unknown as ResponsePacket) : undefined
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

function isStrings(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string')
}

function isWireOptions(value: unknown): value is WireOptions {
  return isRecord(value) && isStrings(value.r) && isStrings(value.x) && typeof value.v === 'boolean'
}

function isTimeout(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0
}
