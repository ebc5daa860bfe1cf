import type { WsCloseCode as Protocol } from '@parley/protocol'

/*
 * The protocol's WebSocket close codes the client sends, one constant each and typed against
 * its `WsCloseCode`, so they cannot drift; the bundler writes them as their numbers (see
 * packet-type.ts for why that matters to the browser bundle).
 */
export const NORMAL: typeof Protocol.NORMAL = 1000
export const TRANSPORT_DROPPED: typeof Protocol.TRANSPORT_DROPPED = 4000
