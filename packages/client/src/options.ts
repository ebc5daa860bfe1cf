import type { JsonValue, TransportName } from '@parley/protocol'
import { isTransportName } from '@parley/protocol'
import type { Fetch } from './http.js'
import type { StorageLike } from './memory.js'
import type { WebSocketConstructor } from './transports/websocket.js'

/** Options of `connect()`. Every one is optional; the defaults are in `DEFAULTS`. */
export interface ClientOptions {
  /** Transports to try, in order. Default `['websocket', 'sse', 'polling']`. */
  transports?: TransportName[]
  /** Mount path on the server, used when the URL has no path of its own. Default `/parley`. */
  path?: string
  /**
   * Credentials for the server's middleware; a function is asked again before every HELLO. One
   * that throws or rejects refuses the client (PARLEY_REFUSED, `auth: <its message>`, its error
   * as `cause`): `connect_error` with `willRetry` false, as for the server's refusal (retrying
   * would not mend an error of the application's); `connect()` tries again. A ParleyError of the
   * application's own, thrown or rejected by the function or thrown while the auth is read (a
   * `toJSON`, a getter), reaches `connect_error` as it is, the same object.
   */
  auth?: JsonValue | (() => JsonValue | Promise<JsonValue>)
  /** Connect automatically on creation. Default true. */
  autoConnect?: boolean
  /**
   * Longest wait for one transport to open and answer HELLO, in ms; for SSE, as long again from
   * its GET for the stream's first bytes. Default 3000. A WebSocket upgrade that gets no answer
   * fails over after a third of it (at least 1000, at most all of it); within the quiet time
   * after a `server handoff` (10 s, longer when tries time out or busy nodes turn them away; its
   * resume, or connect() after disconnect()), it waits all of it, at most 10000.
   */
  connectTimeout?: number
  /** Default reply timeout of `emitWithAck`, in ms (`Infinity`: none). Default 10000. */
  ackTimeout?: number
  /** Reconnect after losing the server. Default true. */
  reconnection?: boolean
  /** Give up after this many failed reconnection attempts. Default Infinity. */
  reconnectionAttempts?: number
  /** First reconnection delay, in ms; doubles each attempt (the delay never below 100). Default 500. */
  reconnectionDelay?: number
  /** Largest reconnection delay, in ms; below 100 counts as 100. Default 10000. */
  reconnectionDelayMax?: number
  /** Jitter, 0 (none) to 1 (full jitter: uniform in [0, delay]). Default 1. */
  randomization?: number
  /** Wait before trying to climb from SSE or polling to a better transport, in ms. Default 10000. */
  upgradeDelay?: number
  /** Largest wait between upgrade probes (the wait doubles after each failure), at least 100. Default 300000. */
  upgradeDelayMax?: number
  /** Most numbered messages kept until the server acknowledges them (whole, >= 1). Default 10000. */
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
  /**
   * Send cookies (and HTTP auth) with SSE and polling requests to another origin, as WebSocket
   * always does: `fetch` with `credentials: 'include'`. The server must allow that origin
   * (`allowedOrigins`). Default false.
   */
  withCredentials?: boolean
}

export type ResolvedOptions = Required<Omit<ClientOptions, 'auth' | 'WebSocket' | 'fetch' | 'storage'>> &
  Pick<ClientOptions, 'auth' | 'WebSocket' | 'fetch' | 'storage'>

/**
 * The default of every option that has one (the README's options table shows them), in ms and
 * bytes: what `connect()` uses for an option left out.
 */
export const DEFAULTS = {
  transports: ['websocket', 'sse', 'polling'] as TransportName[],
  path: '/parley',
  autoConnect: true,
  connectTimeout: 3000,
  ackTimeout: 10_000,
  reconnection: true,
  reconnectionAttempts: Infinity,
  reconnectionDelay: 500,
  reconnectionDelayMax: 10_000,
  randomization: 1,
  upgradeDelay: 10_000,
  upgradeDelayMax: 300_000,
  maxQueuedMessages: 10_000,
  maxQueuedBytes: 8 * 1024 * 1024,
  maxPendingAcks: 1000,
  withCredentials: false,
} as const

/**
 * Fills in defaults and checks every option; a bad one throws a TypeError that names it and says
 * what it takes (PARLEY_INVALID_ARGUMENT: `option ackTimeout must be a number >= 1`). Every
 * option with a default must have its default's type; numbers are >= 0 (randomization <= 1 too),
 * the timeouts and `max...` limits >= 1, and the counts (`max...`, reconnectionAttempts) whole;
 * Infinity passes all of these. No options (undefined, or null from plain JavaScript) need no
 * default object: `for...in` over either runs no iteration.
 */
export function resolveOptions(options?: ClientOptions): ResolvedOptions {
  const resolved: Record<string, unknown> = { ...DEFAULTS }
  // What is wrong, as far as it is known yet: what the caller gave may throw at any touch (a
  // Proxy whose traps throw, a revoked one), and that too is a bad option, named when its name
  // is known, never the engine's TypeError.
  let bad = 'options are not valid'
  // The defaults are valid: only what was given is checked. An option with a default given as
  // undefined keeps its default, as the types allow and as the server reads its own options
  // (`{ ackTimeout: config.ackTimeout }` with nothing configured), rather than throw.
  try {
    for (const key in options) {
      const fallback: unknown = DEFAULTS[key as keyof typeof DEFAULTS]
      // Counts (max*, reconnectionAttempts) are whole; limits and timeouts are 1 or more (0
      // would refuse every emit, or time out every try); Infinity passes both (`!(v % 1)`).
      const min = +/^max|Timeout/.test(key)
      const whole = /^max|Att/.test(key)
      // What the option takes, said by the one message every check below throws (a value that
      // throws when read included), from what those checks ask.
      bad = `option ${key} must be ${
        key === 'transports'
          ? `a list of ${DEFAULTS.transports}`
          : key === 'path'
            ? `a path like ${DEFAULTS.path}`
            : key === 'storage'
              ? 'like localStorage'
              : key === 'auth'
                ? 'JSON or a function'
                : key === 'randomization'
                  ? 'a number from 0 to 1'
                  : typeof fallback === 'number'
                    ? `a ${whole ? 'whole ' : ''}number >= ${min}`
                    : fallback === undefined
                      ? 'a function'
                      : 'a boolean'
      }`
      const v: unknown = options[key as keyof ClientOptions]
      if (!(key in DEFAULTS)) {
        // Options without a default: those four; anything else is a mistake. The hint only
        // where it is the mistake (`query`, `queries`, `Query`, as socket.io's client takes).
        if (!/^(auth|WebSocket|fetch|storage)$/.test(key)) {
          bad = `unknown option ${key}${/^quer/i.test(key) ? ' (query parameters go in the URL)' : ''}`
          throw 0
        }
        // What the client calls must be callable (undefined: the platform's). `auth` is checked
        // when it is sent: a function's result is known only then. The browser build leaves this
        // out: a page has its platform's WebSocket and fetch, and a wrong one given fails at its
        // first use (a transport_error), and a wrong storage costs only the memory of the
        // transport that worked.
        if (
          !(globalThis as { PARLEY_BROWSER_BUNDLE?: boolean }).PARLEY_BROWSER_BUNDLE &&
          key !== 'auth' &&
          v !== undefined &&
          (key === 'storage'
            ? [(v as StorageLike | null)?.getItem, (v as StorageLike | null)?.setItem]
            : [v]
          ).some((f) => typeof f !== 'function')
        ) {
          throw 0
        }
      } else if (v === undefined) continue
      else if (
        typeof v !== typeof fallback ||
        (typeof v === 'number' &&
          !(v >= min && (key !== 'randomization' || v <= 1) && (!whole || !(v % 1)))) ||
        (key === 'transports' && !(Array.isArray(v) && v.length > 0 && v.every(isTransportName))) ||
        (key === 'path' && !(v as string).startsWith('/'))
      ) {
        throw 0
      }
      resolved[key] = v
    }
  } catch {
    throw misuse(bad)
  }
  return resolved as ResolvedOptions
}

/**
 * The server's base URL for HTTP (`http[s]://host/path`) from the URL and path given, and the
 * URL's own query parameters as `&key=value...`: every request of every transport carries them
 * (the server's `socket.handshake.query`). `v` and `sid` are the protocol's own.
 */
export function baseUrl(url: string | undefined, path: string): [base: string, query: string] {
  const here = (globalThis as { location?: { href: string } }).location?.href
  let u: URL
  try {
    // Outside browsers, no URL at all fails here too (`bad server URL: undefined`): with no base,
    // '' is no URL.
    u = new URL(url ?? here ?? '', here)
    // Only these reach a Parley server: any other (`ftp:`, a page opened from `file:`) would
    // fail every try of every transport, and retry them forever.
    if (!/^(http|ws)s?:$/.test(u.protocol)) throw 0
  } catch {
    throw misuse(`bad server URL: ${named(url ?? here)}`)
  }
  // No transport could send them alike (a browser's WebSocket drops them, fetch refuses them):
  // dropped in silence, they would leave the server's middleware wondering.
  if (u.username || u.password) throw misuse('no credentials in the URL: use the auth option')
  const p = url !== undefined && u.pathname !== '/' ? u.pathname : path
  const query = url === undefined ? '' : u.search.slice(1)
  if (/(^|&)(v|sid)=/.test(query)) throw misuse('the URL may not set v or sid')
  // ws: and wss: name the same server as http: and https:.
  return [u.origin.replace(/^ws/, 'http') + p.replace(/\/+$/, ''), query && `&${query}`]
}

/**
 * What a misuse of the API throws, at once (a bad or unknown option, a URL that cannot be used,
 * a `timeout` that is not a number >= 0): a TypeError, as JavaScript's own, with the stable code
 * PARLEY_INVALID_ARGUMENT. A mistake in the calling code, never sent on the wire.
 */
export function misuse(message: string): TypeError {
  const error = new TypeError(message) as TypeError & { code: string }
  error.code = 'PARLEY_INVALID_ARGUMENT'
  return error
}

/**
 * A value the caller gave (or threw) as text, for a message; `message`: an error's message,
 * where it has one, rather than the whole error. Never throws, whatever the value: a symbol
 * (`Symbol(x)`, which a template would throw on), an object without prototype, one whose
 * `toString` throws, a Proxy whose traps throw or a revoked one (`[object]`, `[function]`).
 * At most its first 1024 UTF-16 units (as the server cuts an application's message): a message
 * stays a message, whatever length the value has. Never half an emoji: a lone surrogate left at
 * the end (the cut's first half of a pair, or the value's own) is dropped, as the server's cut
 * (`cutText`) drops the first half; shown alone it is a replacement character, and a logger
 * writing UTF-8 turns it into one for good. (`\p{Cs}` with the `u` flag matches a surrogate only
 * where it is not half of a pair: a whole emoji at the end stays.)
 */
export function named(value: unknown, message?: 1): string {
  try {
    return String((message && (value as Error | undefined)?.message) ?? value)
      .slice(0, 1024)
      .replace(/\p{Cs}$/u, '')
  } catch {
    return `[${typeof value}]`
  }
}
