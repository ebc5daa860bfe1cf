// What another node's broadcast or reply becomes on this node, and back: the conversions the
// adapter makes at the edge of Redis, apart from the packets' shapes (wire.ts), which only say
// what is well-formed.
import {
  aboutEvent,
  ErrorCode,
  MAX_ACK_ID,
  ParleyError,
  type PreparedEvent,
  prepareEvent,
  type WireValue,
} from '@parley/protocol'
import type { BroadcastMessage, BroadcastReply } from '@parley/server'
import type { Warnings } from './warnings.js'
import { packValue, type ResponsePacket, unpackValue } from './wire.js'

/** `Omit` over each member of a union: a packet kind keeps its own fields. */
export type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never

/** A broadcast received from another node, encoded here once, on first use. */
export function remoteMessage(name: string, args: WireValue[]): BroadcastMessage {
  let prepared: PreparedEvent | undefined
  return {
    name,
    args,
    prepared: () => {
      prepared ??= prepareEvent(name, args)
      return prepared
    },
  }
}

/**
 * A reply of this node's socket to the event `name`, as it crosses to the node that broadcast
 * with acks. One JSON cannot carry fails there with a message that names the event, as the
 * server's other errors about a payload do (`reply to "quote": ...`).
 */
export function fromReply(reply: BroadcastReply, name: string): DistributiveOmit<ResponsePacket, 'n' | 'id'> {
  if (!reply.ok) {
    const { code, message, details } = reply.error
    return details?.dropped === true
      ? { k: 'reply', ok: false, code, message, d: true }
      : { k: 'reply', ok: false, code, message }
  }
  try {
    return { k: 'reply', ok: true, v: packValue(reply.value) }
  } catch (error) {
    // The encoder says why (`payload cannot be serialised to JSON`); only its words cross.
    const why = error instanceof Error ? error.message : 'not JSON'
    return {
      k: 'reply',
      ok: false,
      code: ErrorCode.UNSERIALIZABLE,
      message: aboutEvent(name, `${why}; the reply cannot cross nodes`, true),
    }
  }
}

/** A reply of another node's socket, as the caller of this node's broadcast with acks gets it. */
export function toReply(packet: Extract<ResponsePacket, { k: 'reply' }>): BroadcastReply {
  if (!packet.ok) {
    const details = packet.d === true ? { details: { dropped: true } } : undefined
    return { ok: false, error: new ParleyError<string>(packet.code, packet.message, details) }
  }
  const value = unpackValue(packet.v)
  return value.ok
    ? { ok: true, value: value.value }
    : {
        ok: false,
        error: new ParleyError(ErrorCode.INVALID_PACKET, 'a reply from another node was malformed'),
      }
}

/**
 * Whether an event from node `from` may go to this node's sockets: no larger than this node's
 * maxPayload (`limit`, UTF-8 bytes), as a local emit is checked. The sender checked depth and
 * keys, which are the same rule on every node, against its own maxPayload, which may be larger:
 * only the size is measured here (without making the text), once per broadcast, its bytes only
 * when its length cannot settle it (see pastBytes in @parley/protocol). One that does not fit is
 * dropped here, with a warning.
 */
export function fits(
  message: BroadcastMessage,
  from: string,
  limit: number | undefined,
  warnings: Warnings,
): boolean {
  if (limit === undefined) return true
  const prepared = message.prepared()
  const units = prepared.textLength(Number.MAX_SAFE_INTEGER, MAX_ACK_ID)
  // A UTF-16 unit is at most 3 bytes: a third of the limit or fewer surely fits.
  if (units * 3 <= limit) return true
  const size = prepared.byteLength(Number.MAX_SAFE_INTEGER, MAX_ACK_ID)
  if (size <= limit) return true
  // Named after its event, as an emit refused on this node is (`event "news": the packet is ...`).
  warnings.warn(
    'payload',
    `a broadcast from another node does not fit this node's maxPayload and was dropped for its sockets: ${aboutEvent(message.name, `the packet is ${size} bytes, past maxPayload (${limit} bytes)`)}; the nodes' maxPayload differ (give every node the same), or the sender is of an earlier version, which counted characters`,
    { node: from, code: ErrorCode.PAYLOAD_TOO_LARGE, limit, event: message.name },
  )
  return false
}
