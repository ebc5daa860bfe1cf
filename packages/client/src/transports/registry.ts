import type { TransportName } from '@parley/protocol'
import type { Fetch } from '../http.js'
import { PollingTransport } from './polling.js'
import { SseTransport } from './sse.js'
import type { Transport } from './transport.js'
import { type WebSocketConstructor, WebSocketTransport } from './websocket.js'

/** What the transports need from the client's options. */
export interface TransportSetup {
  WebSocket?: WebSocketConstructor | undefined
  fetch: Fetch
}

/**
 * Every transport by name, and its endpoint under the mount point (`base`, http or https). The
 * one place where a name picks a class: the rest of the client asks a transport what it is.
 */
export const TRANSPORT_FACTORIES: Record<
  TransportName,
  (base: string, setup: TransportSetup, maxPayload: number) => Transport
> = {
  websocket: (base, setup, maxPayload) =>
    new WebSocketTransport(`${base.replace(/^http/, 'ws')}/ws?v=1`, setup.WebSocket, maxPayload),
  sse: (base, setup, maxPayload) => new SseTransport(`${base}/sse`, setup.fetch, maxPayload),
  polling: (base, setup, maxPayload) => new PollingTransport(`${base}/poll`, setup.fetch, maxPayload),
}
