import type { JsonValue, TransportName } from '@parley/protocol'
import { TRANSPORTS } from '@parley/protocol'
import type { Fetch } from './http.js'
import type { StorageLike } from './memory.js'
import type { WebSocketConstructor } from './transports/websocket.js'

/** Options of `connect()`. Every one is optional; the defaults are in `DEFAULTS`. */
export interface ClientOptions {
  /** Transports to try, in order. Default `['websocket', 'sse', 'polling']`. */
  transports?: TransportName[]
  /** Mount path on the server, used when the URL has no path of its own. Default `/parley`. */
  path?: string
  /** Credentials for the server's middleware; a function is asked again before every HELLO. */
  auth?: JsonValue | (() => JsonValue | Promise<JsonValue>)
  /** Connect automatically on creation. Default true. */
  autoConnect?: boolean
  /** Longest wait for one transport to open and answer HELLO, in ms. Default 3000. */
  connectTimeout?: number
  /** Default reply timeout of `emitWithAck`, in ms (`Infinity`: none). Default 10000. */
  ackTimeout?: number
  /** Reconnect after losing the server. Default true. */
  reconnection?: boolean
  /** Give up after this many failed reconnection attempts. Default Infinity. */
  reconnectionAttempts?: number
  /** First reconnection delay, in ms; doubles each attempt. Default 500. */
  reconnectionDelay?: number
  /** Largest reconnection delay, in ms. Default 10000. */
  reconnectionDelayMax?: number
  /** Jitter, 0 (none) to 1 (full jitter: uniform in [0, delay]). Default 1. */
  randomization?: number
  /** Wait before trying to climb from SSE/polling back to WebSocket, in ms. Default 10000. */
  upgradeDelay?: number
  /** Largest wait between upgrade probes (the wait doubles after each failure). Default 300000. */
  upgradeDelayMax?: number
  /** Most numbered messages kept until the server acknowledges them. Default 10000. */
  maxQueuedMessages?: number
  /** Most bytes of such messages. Default 8 MiB. */
  maxQueuedBytes?: number
  /** Most replies awaited at once. Default 1000. */
  maxPendingAcks?: number
  /** WebSocket constructor; default the platform's, else the `ws` package. */
  WebSocket?: WebSocketConstructor
  /** fetch function; default `globalThis.fetch`. */
  fetch?: Fetch
  /** Where to remember the transport that worked; default `localStorage`, else memory. */
  storage?: StorageLike
}

export type ResolvedOptions = Required<Omit<ClientOptions, 'auth' | 'WebSocket' | 'fetch' | 'storage'>> &
  Pick<ClientOptions, 'auth' | 'WebSocket' | 'fetch' | 'storage'>

export const DEFAULTS = {
  transports: ['websocket', 'sse', 'polling'] as TransportName[],
  path: '/parley',
  autoConnect: true,
  connectTimeout: 3000,
  ackTimeout: 10_000,
  reconnection: true,
  reconnectionAttempts: Number.POSITIVE_INFINITY,
  reconnectionDelay: 500,
  reconnectionDelayMax: 10_000,
  randomization: 1,
  upgradeDelay: 10_000,
  upgradeDelayMax: 300_000,
  maxQueuedMessages: 10_000,
  maxQueuedBytes: 8 * 1024 * 1024,
  maxPendingAcks: 1000,
} as const

const NUMBERS = [
  'connectTimeout',
  'ackTimeout',
  'reconnectionAttempts',
  'reconnectionDelay',
  'reconnectionDelayMax',
  'upgradeDelay',
  'upgradeDelayMax',
  'maxQueuedMessages',
  'maxQueuedBytes',
  'maxPendingAcks',
] as const

/** Fills in defaults and checks every option; a bad one throws a TypeError that names it. */
export function resolveOptions(options: ClientOptions = {}): ResolvedOptions {
  const o = { ...DEFAULTS, ...options } as ResolvedOptions
  for (const key of NUMBERS) {
    const v = o[key]
    if (typeof v !== 'number' || !(v >= 0)) throw new TypeError(`option ${key} must be a number >= 0`)
  }
  if (!(o.randomization >= 0 && o.randomization <= 1))
    throw new TypeError('option randomization must be in [0, 1]')
  if (
    !Array.isArray(o.transports) ||
    o.transports.length === 0 ||
    !o.transports.every((t) => (TRANSPORTS as readonly string[]).includes(t))
  ) {
    throw new TypeError(`option transports must be a non-empty list of ${TRANSPORTS.join(', ')}`)
  }
  if (typeof o.path !== 'string' || !o.path.startsWith('/'))
    throw new TypeError('option path must start with "/"')
  return o
}

/** The server's base URL for HTTP (`http[s]://host/path`) from the URL and path given. */
export function baseUrl(url: string | undefined, path: string): string {
  const here = (globalThis as { location?: { href: string } }).location?.href
  if (url === undefined && here === undefined) throw new TypeError('connect() needs a URL outside browsers')
  const u = new URL(url ?? here!, here)
  const protocol = u.protocol === 'wss:' ? 'https:' : u.protocol === 'ws:' ? 'http:' : u.protocol
  const p = url !== undefined && u.pathname !== '/' ? u.pathname : path
  return `${protocol}//${u.host}${p.replace(/\/+$/, '')}`
}
