import type { Packet } from '@parley/protocol'
import { type Encoded, encode, utf8Length } from './codec.js'
import * as PacketType from './packet-type.js'

/**
 * A packet ready for any transport, encoded once when it was handed over: text transports send
 * `text`, WebSocket sends `frame` when there is one (binary), else `text`.
 */
export interface Outgoing extends Encoded {
  readonly packet: Packet
  /** UTF-8 length of `text`: what a text transport puts on the wire. */
  readonly bytes: number
}

/** Encodes a packet once, for every transport; throws PARLEY_UNSERIALIZABLE, PARLEY_FORBIDDEN_KEY. */
export function outgoing(packet: Packet): Outgoing {
  const { text, frame } = encode(packet)
  // Named, not spread: V8 copies a spread object with properties added after it on a slow path,
  // which took more of a Node client's CPU per emit than the encoding itself.
  return { text, frame, packet, bytes: utf8Length(text) }
}

/** The answer to a PING: one for the session's life (polling knows it by that, see its `send`). */
export const PONG = outgoing({ type: PacketType.PONG })

/** The client's goodbye: the session is over (`disconnect()`). */
export const BYE = outgoing({
  type: PacketType.CLOSE,
  reason: 'client disconnect',
  message: 'the client disconnected',
})
