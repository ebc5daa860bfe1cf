import { ErrorCode, PacketType, ParleyError } from '@parley/protocol'
import type { HttpSide } from '../transports/transport.js'

/** A sequence number as a query parameter: digits, no leading zero (`Number.isSafeInteger` bounds it). */
const SEQ = /^(?:0|[1-9][0-9]{0,15})$/

const NO_SIZES: readonly number[] = []

/** What `takeGetAck` made of a GET's `ack`: the number handed to the session, or the refusal. */
export type GetAck = { ok: true; ack?: number } | { ok: false; error: ParleyError }

/**
 * A GET of a session's downstream may acknowledge what the client got so far (`ack`, as an ACK
 * packet would): a polling client then needs no POST for its ACKs, since it asks again at once.
 * `acks`: the query's `ack` values (none, one, or more, which is no number). Handed to `http`, the
 * session's transport, before the GET is: then `ack` goes with the GET too (see
 * `HttpSide.downstream`). One that is no sequence number is refused (400, the caller answers it)
 * and the session is closed, as for an upstream body that does not decode.
 */
export function takeGetAck(http: HttpSide, acks: readonly string[]): GetAck {
  if (acks.length === 0) return { ok: true }
  const given = acks.length === 1 ? acks[0]! : ''
  const ack = SEQ.test(given) ? Number(given) : Number.NaN
  if (!Number.isSafeInteger(ack)) {
    const error = new ParleyError(ErrorCode.INVALID_PACKET, 'ack is a sequence number')
    http.reject(error)
    return { ok: false, error }
  }
  http.receive([{ type: PacketType.ACK, ack }], NO_SIZES)
  return { ok: true, ack }
}

/** The query's values of `ack` as Fastify parses them: none, one, or several. */
export function acksOf(given: string | string[] | undefined): readonly string[] {
  return given === undefined ? [] : typeof given === 'string' ? [given] : given
}
