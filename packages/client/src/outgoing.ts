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

/** Bytes of a string in UTF-8, without encoding it. */
export function utf8Length(text: string): number {
  let n = text.length
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c >= 0xd800 && c < 0xdc00) {
      // A surrogate pair is 2 units and 4 bytes.
      n += 2
      i++
    } else if (c >= 0x800) n += 2
    else if (c >= 0x80) n += 1
  }
  return n
}
