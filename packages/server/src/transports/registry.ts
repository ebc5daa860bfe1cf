import type { ResolvedOptions } from '../options.js'
import type { HttpTransport } from './http.js'
import { PollingTransport } from './polling.js'
import { SseTransport } from './sse.js'
import { unreadAnswersOf } from './unread.js'

/** The transports a handshake POST can open, by name: the endpoints pick none by class. */
export type HttpTransportName = 'sse' | 'polling'

/** The path segment of each HTTP transport's endpoint, under the mount path (docs/protocol.md). */
export const httpSegments: Record<HttpTransportName, string> = { sse: 'sse', polling: 'poll' }

/** What Parley's endpoints are mounted under: the `path` option, '' for '/'. */
export const mountBase = (path: string): string => (path === '/' ? '' : path)

/**
 * `base` (`mountBase`) under the prefix of the Fastify context the plugin is registered in, as
 * the URLs of its routes are: Fastify joins a prefix that ends in a slash to the routes without
 * it (`/api/` and `/parley` make `/api/parley`).
 */
export const prefixedBase = (prefix: string, base: string): string =>
  `${prefix.endsWith('/') ? prefix.slice(0, -1) : prefix}${base}`

/** Makes the transport of a handshake POST to the endpoint of `name`. */
export const httpTransports: Record<HttpTransportName, (options: ResolvedOptions) => HttpTransport> = {
  sse: (options) => new SseTransport(unreadAnswersOf(options)),
  polling: (options) =>
    new PollingTransport(
      options.maxPayload,
      options.pollingCompression ? options.pollingCompression.threshold : false,
      unreadAnswersOf(options),
    ),
}
