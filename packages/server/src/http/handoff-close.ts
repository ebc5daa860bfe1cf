import { CloseReason, encodeText, PacketType } from '@parley/protocol'

/**
 * The CLOSE 'server handoff' for the client of a request or a WebSocket this node relays to its
 * session's node, when this node closes: its session lives on there, and is resumed through
 * another node after `retryAfter`, drawn for each client within `retrySpread`. As for a drained
 * session, the client keeps quiet while its first tries fail (the balancer may still send them
 * here), where a cut would have it tell its application the session is down.
 */
export function relayHandoffClose(retrySpread: number): string {
  return encodeText({
    type: PacketType.CLOSE,
    reason: CloseReason.SERVER_HANDOFF,
    message: 'the node relaying this session is closing: resume it through another node',
    retryAfter: Math.floor(Math.random() * (retrySpread + 1)),
  })
}
