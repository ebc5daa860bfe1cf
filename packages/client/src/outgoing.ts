import { type Encoded, encode } from './codec.js'
import * as PacketType from './packet-type.js'

/** A packet ready for any transport: its encoding, made once when it was handed over. */
export type Outgoing = Encoded

/** The client's goodbye: the session is over (`disconnect()`). */
export const BYE = encode({
  type: PacketType.CLOSE,
  reason: 'client disconnect',
  message: 'the client disconnected',
})
