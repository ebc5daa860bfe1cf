import { CloseReason, encodeText, PacketType } from '@parley/protocol'
import type { HttpTransportName } from '../transports/registry.js'

/**
 * The CLOSE 'server handoff' for the client of a request or a WebSocket this node relays to its
 * session's node, when this node closes: its session lives on there, and is resumed through
 * another node after `retryAfter`, drawn for each client within `retrySpread`. As for a drained
 * session, the client keeps quiet while its first tries fail (the balancer may still send them
 * here), where a cut would have it tell its application the session is down.
 */
export function relayHandoffClose(retrySpread: number): string {
  return handoffClose(
    retrySpread,
    'the node relaying this session is closing: resume it through another node',
  )
}

/**
 * The CLOSE 'server handoff' for a GET of a session whose node handed it off and cannot be
 * reached any more (its drain is over, and it closed): the GET came too late for that node's own
 * CLOSE, but the session waits to be claimed, and the client's resume claims it, as it would
 * have after that CLOSE (with its quiet time), rather than after a failed transport.
 */
export function handedOffClose(retrySpread: number): string {
  return handoffClose(retrySpread, 'the node of this session handed it off and is gone: resume it')
}

function handoffClose(retrySpread: number, message: string): string {
  return encodeText({
    type: PacketType.CLOSE,
    reason: CloseReason.SERVER_HANDOFF,
    message,
    retryAfter: Math.floor(Math.random() * (retrySpread + 1)),
  })
}

/**
 * `close` as the whole answer to a GET of `kind`, as its session's node would have sent a CLOSE
 * of its own: the stream's one event, or the poll's one line.
 */
export function closeAnswer(kind: HttpTransportName, close: string): { type: string; body: string } {
  return kind === 'sse'
    ? { type: 'text/event-stream; charset=utf-8', body: `data: ${close}\n\n` }
    : { type: 'text/plain; charset=utf-8', body: close }
}
