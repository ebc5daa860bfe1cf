import type { Packet } from '@parley/protocol'
import { encode } from './codec.js'

/** A packet ready for any transport: text transports send `text`, WebSocket may frame it. */
export interface Outgoing {
  readonly packet: Packet
  readonly text: string
  /** UTF-8 length of `text`: what a text transport puts on the wire. */
  readonly bytes: number
  /** True when the packet carries binary leaves (WebSocket then sends a binary frame). */
  readonly binary: boolean
}

/** Encodes a packet once, for every transport; throws PARLEY_UNSERIALIZABLE, PARLEY_FORBIDDEN_KEY. */
export function outgoing(packet: Packet): Outgoing {
  const { text, binary } = encode(packet)
  return { packet, text, bytes: utf8Length(text), binary }
}

/** Bytes of a string in UTF-8. */
export function utf8Length(text: string): number {
  // Node counts without a copy (encoding one only to count it was a twentieth of a Node client's
  // CPU in an echo). The browser bundle leaves this branch out.
  if (!(globalThis as { PARLEY_BROWSER_BUNDLE?: boolean }).PARLEY_BROWSER_BUNDLE) {
    const buffer = (globalThis as { Buffer?: { byteLength(text: string): number } }).Buffer
    if (buffer) return buffer.byteLength(text)
  }
  return new TextEncoder().encode(text).length
}
