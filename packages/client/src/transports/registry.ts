import type { TransportName } from '@parley/protocol'
import type { Fetch } from '../http.js'
import type { Ledger } from '../ledger.js'
import { PollingTransport } from './polling.js'
import { SseTransport } from './sse.js'
import type { Transport } from './transport.js'
import { type WebSocketConstructor, WebSocketTransport } from './websocket.js'

/**
 * What the transports need from the client's options, given to every transport (a WebSocket
 * has no use for `fetch`, nor SSE and polling for `WebSocket`: one shape costs the bundle less).
 */
export interface TransportSetup {
  WebSocket?: WebSocketConstructor | undefined
  /**
   * Every HTTP request's `fetch`: `fetchFn`, a name the build shortens, where `fetch` (the option's,
   * also in the spread of the options) could not be.
   */
  fetchFn: Fetch
  /**
   * Node only: `fetch` is the platform's (no `fetch` option given), whose errors say first-hand
   * whether a request ever connected (see `hasCode` in http.ts). An application's may
   * have tried more than once, and its error speaks of its last try alone. Taken on trust: a
   * `globalThis.fetch` the application replaced looks the same, which the README tells it to
   * pass as the `fetch` option.
   */
  ownFetch?: boolean
  /** The URL's own query parameters, `&key=value...`, for every request. */
  query: string
  /**
   * The session's numbers: SSE and polling carry in each GET, owed or not, the ACK of every packet
   * received in order so far (`takeOwed`, else `inSeq`), so that the server sees what never came;
   * an OPEN's `ack` is held to the ACK's rule (`badAck`: past the last seq this client numbered,
   * or not 0 when the OPEN is of a new session), and the transport refuses the OPEN.
   */
  ledger: Pick<Ledger, 'takeOwed' | 'inSeq' | 'badAck'>
}

/** A new transport for one attempt, at its endpoint under the mount point (`base`). */
export type TransportEntry = (base: string, setup: TransportSetup, maxPayload: number) => Transport

/**
 * Every transport by name, the best first: WebSocket carries both directions on one connection,
 * SSE needs a POST per upstream batch, polling a request per downstream batch too. From a later
 * one the client climbs back to an earlier one when it works again. The one place where a name
 * picks a class: the rest of the client asks a transport what it is.
 */
export const TRANSPORTS: Record<TransportName, TransportEntry> = {
  websocket: (base, setup, maxPayload) =>
    new WebSocketTransport(`${base.replace(/^http/, 'ws')}/ws?v=1${setup.query}`, setup, maxPayload),
  sse: (base, setup, maxPayload) => new SseTransport(`${base}/sse?v=1${setup.query}`, setup, maxPayload),
  polling: (base, setup, maxPayload) =>
    new PollingTransport(`${base}/poll?v=1${setup.query}`, setup, maxPayload),
}
