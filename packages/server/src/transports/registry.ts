import type { ResolvedOptions } from '../options.js'
import type { HttpTransport } from './http.js'
import { PollingTransport } from './polling.js'
import { SseTransport } from './sse.js'

/** The transports a handshake POST can open, by name: the endpoints pick none by class. */
export type HttpTransportName = 'sse' | 'polling'

/** Makes the transport of a handshake POST to the endpoint of `name`. */
export const httpTransports: Record<HttpTransportName, (options: ResolvedOptions) => HttpTransport> = {
  sse: () => new SseTransport(),
  polling: (options) =>
    new PollingTransport(
      options.maxPayload,
      options.pollingCompression ? options.pollingCompression.threshold : false,
    ),
}
