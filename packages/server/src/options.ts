import { X509Certificate } from 'node:crypto'
import { closestName, MAX_TIMER_MS, TRANSPORTS, type TransportName, WireLimits } from '@parley/protocol'
import type { AdapterFactory } from './adapter/adapter.js'
import { isInstance, shown } from './thrown.js'

/** Which cross-origin pages may talk to the server. */
export type AllowedOrigins = string[] | '*' | ((origin: string) => boolean)

/**
 * A prom-client (v15) `Registry`, seen through the methods Parley checks for: typed this way so
 * that applications without prom-client installed still compile.
 */
export interface MetricsRegistry {
  registerMetric(metric: unknown): void
  getSingleMetric(name: string): unknown
  metrics(): Promise<string>
}

/** One certificate (PEM text or bytes), or several, as Node's `tls` `ca` takes them. */
export type CertificateAuthority = string | Buffer | (string | Buffer)[]

/** Fastify's (pino's) log levels. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

/** Options of the `@parley/server` plugin. Every one is checked when the plugin registers. */
export interface ParleyServerOptions {
  /** Where the endpoints are mounted. Starts with '/'. Default '/parley'. */
  path?: string
  /**
   * Serve the browser client at `<path>/parley.min.js` (with an ETag, revalidated by the
   * browser), so that a page needs no build step: `<script src="/parley/parley.min.js">`.
   * Needs `@parley/client` installed beside the server. Default true.
   */
  serveClient?: boolean
  /**
   * Lets this instance boot at `path` while another Fastify instance on the same HTTP server (a
   * `serverFactory` that keeps it across restarts) still serves there: it waits beside that one,
   * taking none of the path's upgrades, and succeeds it once that one's close reaches Parley. A
   * restart in place boots its new instance so, before it closes the old one: a boot that fails
   * leaves the old one serving. Default false: a second instance at a path is refused, since
   * only one of two open there takes its WebSocket upgrades.
   */
  successor?: boolean
  /**
   * The log level of Parley's own routes: Fastify writes two info lines per request, and SSE
   * and polling clients make thousands a minute. Default 'warn' (quiet); 'info' shows them.
   */
  logLevel?: LogLevel
  /** Transports offered, in order of preference. Default all three. */
  transports?: TransportName[]
  /** Milliseconds between server pings. Default 20000. */
  pingInterval?: number
  /** Milliseconds to wait for any packet after a ping before the transport is dead. Default 15000. */
  pingTimeout?: number
  /** Largest packet, WebSocket message or HTTP body accepted, in bytes. Default 1000000. */
  maxPayload?: number
  /**
   * Hard limit, per socket, of outgoing bytes kept for replay or queued in the transport.
   * Past it the socket is disconnected with 'slow consumer'. Default 8 MiB.
   */
  maxBufferedBytes?: number
  /**
   * Soft limit, per socket, of outgoing bytes not yet acknowledged or not yet written (see
   * `socket.bufferedAmount`): past it, volatile emits are dropped. At most `maxBufferedBytes`.
   * Default 1 MiB (or `maxBufferedBytes`, when that is lower). When what a socket keeps for
   * replay reaches a quarter of it, the server asks the client for its ACK with a PING.
   */
  highWaterMark?: number
  /** Largest number of replies a socket may await at once. Default 1000. */
  maxPendingAcks?: number
  /**
   * Largest number of a socket's incoming events waiting behind an unfinished async middleware
   * (`socket.use`). Past it, each new event is refused with PARLEY_QUEUE_FULL (ERROR on its ack
   * id, or an error notice) instead of piling up in memory. Default 1000.
   */
  maxWaitingEvents?: number
  /**
   * Cross-origin pages allowed to connect. By default only requests without `Origin`, or whose
   * `Origin` is the server's own, are accepted.
   */
  allowedOrigins?: AllowedOrigins
  /**
   * How long a session waits for a new transport after losing one, in ms; `false` ends it at
   * once. Default `{ window: 120000 }`.
   */
  recovery?: { window?: number } | false
  /**
   * Drain with handoff, when the adapter can store sessions (`@parley/redis`): on close, each
   * live session is written to the store and its client told to resume on another node, which
   * takes it over with nothing lost (see docs/scaling.md). `timeout`: the longest the drain
   * waits, in ms (default 5000; with 2 s more for the store, it must fit in Fastify's
   * `pluginTimeout`, which bounds each preClose hook); sessions not handed off by then end as
   * without it.
   * `batchSize`: sessions written at once (default 500). `retrySpread`: clients are told to
   * come back after a random delay up to this many ms (default 1000), so that the other nodes
   * are not stormed. `false` ends every session at close ('server shutdown'). With or without
   * handoff, `timeout` (5000 with `false`) also bounds the wait at close for the events a
   * session acknowledged that are still in its socket middleware.
   */
  handoff?: { timeout?: number; batchSize?: number; retrySpread?: number } | false
  /**
   * What a client is told when its session ends at close (CLOSE 'server shutdown': no handoff,
   * or its state could not be stored): come back after `retryAfter` ms (default 1000) plus a
   * random delay up to `retrySpread` ms (default 1000), drawn for each session. The client waits
   * at least that long before its first attempt, and its backoff's first delay (at most
   * `reconnectionDelay`, 500 ms by default) is shorter than the hint: without a spread, every
   * client of a node that closes would come back at the same moment.
   */
  shutdown?: { retryAfter?: number; retrySpread?: number }
  /**
   * Milliseconds a fresh WebSocket has to send its HELLO, and the longest a handshake or resume
   * waits for the `use` middleware (past it, the client is answered PARLEY_HANDSHAKE_TIMEOUT).
   * With several nodes, also the longest wait for the adapter to name the owner of a session
   * this node does not hold, then for a connection to that owner. Default 10000.
   */
  handshakeTimeout?: number
  /**
   * Most sessions this node holds at once: connected ones and those waiting in their recovery
   * window. Past it, a handshake for a new session is refused with PARLEY_SERVER_FULL (503 over
   * HTTP; ERROR, then close 1008, over WebSocket) before the middleware runs, and the client
   * tries again after its backoff (behind a balancer, perhaps on another node). Resumes of
   * sessions this node holds are never refused, nor sessions taken over from a draining node:
   * a deploy may take a node past the limit for a while. Bounds the memory a flood of
   * handshakes can take. Default: no limit (`Infinity`).
   */
  maxSessions?: number
  /** permessage-deflate on WebSocket: off by default; `true` compresses messages of 1 KiB or more. */
  perMessageDeflate?: boolean | { threshold?: number }
  /**
   * gzip for long-polling answers of `threshold` bytes or more (default 1 KiB), when the request
   * accepts it: on by default (one-shot, no memory kept per connection); `false` turns it off.
   * SSE streams are not compressed: a compressor per open stream costs too much memory.
   */
  pollingCompression?: boolean | { threshold?: number }
  /**
   * The connection of an SSE client's POSTs, over HTTP/1.1. `'keep-alive'` (the default) keeps
   * it for the next POST: an idle SSE client then holds two connections, its stream and this
   * one. `'close-when-idle'` answers the POST that answers a heartbeat (its PONG) with
   * `Connection: close` when the client POSTed nothing else since the heartbeat before: a client
   * that only answers heartbeats holds its stream alone (about 6 KB less memory per idle SSE
   * client), for a TCP connection (and, with TLS in Node, a handshake) per heartbeat per such
   * client, and its first POST after a quiet heartbeat waits for a new connection. A client that
   * sends or acknowledges keeps its POST connection. The client reads the header and opens a new
   * connection for its next POST: no POST meets a closed connection. HTTP/2 and polling use one
   * connection anyway and are not concerned.
   */
  sseUpstream?: 'keep-alive' | 'close-when-idle'
  /**
   * Makes the adapter that carries rooms and broadcasts (see "The adapter" in the package
   * README). Default: one node, in memory.
   */
  adapter?: AdapterFactory
  /**
   * Prometheus metrics (`parley_*`, see "Metrics" in the package README), created in this
   * prom-client `Registry` (never in the global one). Needs `prom-client` installed; without
   * this option it is not loaded and nothing is counted.
   */
  metrics?: { registry: MetricsRegistry }
  /**
   * How this node reaches the others (the requests it forwards to the node that owns their
   * session, see "Several nodes" in the package README). `ca`: the certificates trusted for
   * nodes whose address is `https://`, in place of Node's default ones (as Node's `tls` `ca`):
   * for nodes behind TLS with a private CA. Default: Node's default trusted CAs.
   */
  forwarding?: { ca?: CertificateAuthority }
}

/** Options after validation, every default filled in. */
export interface ResolvedOptions {
  path: string
  logLevel: LogLevel
  serveClient: boolean
  successor: boolean
  transports: TransportName[]
  pingInterval: number
  pingTimeout: number
  maxPayload: number
  maxBufferedBytes: number
  highWaterMark: number
  maxPendingAcks: number
  maxWaitingEvents: number
  allowedOrigins: AllowedOrigins | undefined
  /** Recovery window in ms; 0 when recovery is disabled. */
  recoveryWindow: number
  /** Drain with handoff, or false (also when recovery is off: there is nothing to resume). */
  handoff: false | { timeout: number; batchSize: number; retrySpread: number }
  /** A CLOSE 'server shutdown' says: come back after `retryAfter` plus up to `retrySpread` ms. */
  shutdown: { retryAfter: number; retrySpread: number }
  handshakeTimeout: number
  /** `Infinity` when there is no limit. */
  maxSessions: number
  perMessageDeflate: false | { threshold: number }
  pollingCompression: false | { threshold: number }
  /** `sseUpstream: 'close-when-idle'`: an idle SSE client's heartbeat POST closes its connection. */
  closeIdleSseUpstream: boolean
  adapter: AdapterFactory | undefined
  /** The registry of the `metrics` option, or undefined: no metrics. */
  metricsRegistry: MetricsRegistry | undefined
  /** The `forwarding` option: `ca` undefined for Node's default trusted CAs. */
  forwarding: { ca: CertificateAuthority | undefined }
}

/**
 * The defaults the plugin fills in, in ms and bytes (the README's options table shows them).
 * `recoveryWindow` is `recovery.window`; `compressionThreshold` the `threshold` of
 * `perMessageDeflate: true` and of `pollingCompression`. `highWaterMark` is at most
 * `maxBufferedBytes`.
 */
export const defaults = {
  path: '/parley',
  logLevel: 'warn' as LogLevel,
  serveClient: true,
  successor: false,
  pingInterval: 20_000,
  pingTimeout: 15_000,
  maxPayload: WireLimits.defaultMaxPayload,
  maxBufferedBytes: 8 * 1024 * 1024,
  highWaterMark: 1024 * 1024,
  maxPendingAcks: 1000,
  maxWaitingEvents: 1000,
  recoveryWindow: 120_000,
  handshakeTimeout: 10_000,
  compressionThreshold: 1024,
  handoff: { timeout: 5000, batchSize: 500, retrySpread: 1000 },
  shutdown: { retryAfter: 1000, retrySpread: 1000 },
} as const

const known = new Set([
  'path',
  'logLevel',
  'serveClient',
  'successor',
  'transports',
  'pingInterval',
  'pingTimeout',
  'maxPayload',
  'maxBufferedBytes',
  'highWaterMark',
  'maxPendingAcks',
  'maxWaitingEvents',
  'allowedOrigins',
  'recovery',
  'handoff',
  'shutdown',
  'handshakeTimeout',
  'maxSessions',
  'perMessageDeflate',
  'pollingCompression',
  'sseUpstream',
  'adapter',
  'metrics',
  'forwarding',
])

/** Thrown by registration when an option is wrong; the message names the option. */
export class ParleyOptionError extends TypeError {
  override readonly name = 'ParleyOptionError'
  readonly code = 'PARLEY_INVALID_OPTION'
  /** The option at fault. */
  readonly option: string

  constructor(option: string, message: string, options?: { cause?: unknown }) {
    super(`@parley/server: option "${option}" ${message}`, options)
    this.option = option
  }
}

/**
 * What an unknown option or key is refused with: its name, and the one it most likely meant
 * (`closestName`), when one is that close.
 */
function unknownName(given: string, names: Iterable<string>, what: string): string {
  const meant = closestName(given, names)
  return meant === undefined ? what : `${what}: did you mean "${meant}"?`
}

// Timers above MAX_TIMER_MS overflow setTimeout's 32-bit delay and would fire at once.
const MAX_DELAY = MAX_TIMER_MS

function integer(options: Record<string, unknown>, key: string, fallback: number, min: number, max: number) {
  const value = options[key]
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ParleyOptionError(key, `must be an integer from ${min} to ${max}, got ${describe(value)}`)
  }
  return value
}

/**
 * `value` as the object option `name`, whose keys are those of `known` (own keys only:
 * `constructor` or `toString` is not an option); `shape` says what it must be.
 */
function optionObject(name: string, value: unknown, known: object, shape: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ParleyOptionError(name, `must be ${shape}`)
  }
  const extra = Object.keys(value).find((k) => !Object.hasOwn(known, k))
  if (extra !== undefined) {
    throw new ParleyOptionError(name, unknownName(extra, Object.keys(known), `has an unknown key "${extra}"`))
  }
  return value as Record<string, unknown>
}

function handoffOption(value: unknown): ResolvedOptions['handoff'] {
  if (value === false) return false
  if (value === undefined) return { ...defaults.handoff }
  const given = optionObject(
    'handoff',
    value,
    defaults.handoff,
    'false or { timeout, batchSize, retrySpread }',
  )
  const field = (key: keyof typeof defaults.handoff, min: number) =>
    integer({ [`handoff.${key}`]: given[key] }, `handoff.${key}`, defaults.handoff[key], min, MAX_DELAY)
  return {
    timeout: field('timeout', 1),
    batchSize: field('batchSize', 1),
    retrySpread: field('retrySpread', 0),
  }
}

function shutdownOption(value: unknown): ResolvedOptions['shutdown'] {
  if (value === undefined) return { ...defaults.shutdown }
  const given = optionObject('shutdown', value, defaults.shutdown, '{ retryAfter, retrySpread }')
  const field = (key: keyof typeof defaults.shutdown) =>
    integer({ [`shutdown.${key}`]: given[key] }, `shutdown.${key}`, defaults.shutdown[key], 0, MAX_DELAY)
  const resolved = { retryAfter: field('retryAfter'), retrySpread: field('retrySpread') }
  if (resolved.retryAfter + resolved.retrySpread > MAX_DELAY) {
    throw new ParleyOptionError(
      'shutdown',
      `must tell clients to wait at most ${MAX_DELAY} ms: retryAfter + retrySpread is ${resolved.retryAfter + resolved.retrySpread}`,
    )
  }
  return resolved
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'function') return 'a function'
  try {
    if (Array.isArray(value)) return 'an array'
  } catch {}
  return shown(value)
}

/**
 * Checks every option and fills in the defaults. Throws ParleyOptionError naming the bad one;
 * options that throw when read (a Proxy whose traps throw, a getter that throws) are refused so
 * too, with what they threw as `cause`.
 */
export function resolveOptions(input: unknown): ResolvedOptions {
  try {
    return resolve(input)
  } catch (error) {
    if (isInstance(error, ParleyOptionError)) throw error
    throw new ParleyOptionError('options', 'cannot be read: reading them, or one of them, threw', {
      cause: error,
    })
  }
}

function resolve(input: unknown): ResolvedOptions {
  if (input === undefined || input === null) input = {}
  if (typeof input !== 'object' || Array.isArray(input)) {
    throw new ParleyOptionError('options', 'must be an object')
  }
  const options = input as Record<string, unknown>
  for (const key of Object.keys(options)) {
    // Fastify passes its own plugin options (prefix, logSerializers) through to plugins.
    if (!known.has(key) && !['prefix', 'logSerializers'].includes(key)) {
      throw new ParleyOptionError(key, unknownName(key, known, 'is not a known option'))
    }
  }

  const path = options.path ?? defaults.path
  if (typeof path !== 'string' || !/^\/[A-Za-z0-9_\-./~]*$/.test(path) || path.includes('//')) {
    throw new ParleyOptionError('path', `must be a URL path starting with "/", got ${describe(path)}`)
  }

  let transports: TransportName[] = [...TRANSPORTS]
  if (options.transports !== undefined) {
    const list = options.transports
    if (
      !Array.isArray(list) ||
      list.length === 0 ||
      !list.every((t) => (TRANSPORTS as readonly unknown[]).includes(t)) ||
      new Set(list).size !== list.length
    ) {
      throw new ParleyOptionError(
        'transports',
        `must be a non-empty list of distinct names among ${TRANSPORTS.join(', ')}`,
      )
    }
    transports = list as TransportName[]
  }

  const pingInterval = integer(options, 'pingInterval', defaults.pingInterval, 1, MAX_DELAY)
  const pingTimeout = integer(options, 'pingTimeout', defaults.pingTimeout, 1, MAX_DELAY)
  // Below a few hundred bytes not even a HELLO with credentials fits.
  const maxPayload = integer(options, 'maxPayload', defaults.maxPayload, 256, 2 ** 30)
  const maxBufferedBytes = integer(options, 'maxBufferedBytes', defaults.maxBufferedBytes, 1024, 2 ** 40)
  const highWaterMark = integer(
    options,
    'highWaterMark',
    Math.min(defaults.highWaterMark, maxBufferedBytes),
    0,
    maxBufferedBytes,
  )
  const maxPendingAcks = integer(options, 'maxPendingAcks', defaults.maxPendingAcks, 1, 2 ** 31 - 1)
  const maxWaitingEvents = integer(options, 'maxWaitingEvents', defaults.maxWaitingEvents, 1, 2 ** 31 - 1)
  const handshakeTimeout = integer(options, 'handshakeTimeout', defaults.handshakeTimeout, 1, MAX_DELAY)
  // `Infinity` says "no limit" as plainly as leaving the option out.
  const maxSessions =
    options.maxSessions === Number.POSITIVE_INFINITY
      ? Number.POSITIVE_INFINITY
      : integer(options, 'maxSessions', Number.POSITIVE_INFINITY, 1, 2 ** 31 - 1)

  const origins = options.allowedOrigins
  if (
    origins !== undefined &&
    origins !== '*' &&
    typeof origins !== 'function' &&
    !(Array.isArray(origins) && origins.every((o) => typeof o === 'string'))
  ) {
    // One origin as a string is what other CORS options take (`@fastify/cors`'s `origin`).
    const hint = typeof origins === 'string' ? `, got ${describe(origins)}: put one origin in a list` : ''
    throw new ParleyOptionError('allowedOrigins', `must be '*', a list of origins or a function${hint}`)
  }
  const allowedOrigins = Array.isArray(origins)
    ? origins.map((o: string) => normaliseOrigin(o))
    : (origins as AllowedOrigins | undefined)

  let recoveryWindow: number = defaults.recoveryWindow
  const recovery = options.recovery
  if (recovery === false) recoveryWindow = 0
  else if (recovery !== undefined) {
    const given = optionObject(
      'recovery',
      recovery,
      { window: undefined },
      'false or { window: milliseconds }',
    )
    recoveryWindow = integer(
      { 'recovery.window': given.window },
      'recovery.window',
      defaults.recoveryWindow,
      1,
      MAX_DELAY,
    )
  }

  // Checked even when recovery is off (which rules the handoff out): a typo fails everywhere.
  const checkedHandoff = handoffOption(options.handoff)
  const handoff = recoveryWindow === 0 ? false : checkedHandoff
  const shutdown = shutdownOption(options.shutdown)

  const perMessageDeflate = compression(options, 'perMessageDeflate', false)
  const pollingCompression = compression(options, 'pollingCompression', true)

  const sseUpstream = options.sseUpstream ?? 'keep-alive'
  if (sseUpstream !== 'keep-alive' && sseUpstream !== 'close-when-idle') {
    throw new ParleyOptionError(
      'sseUpstream',
      `must be 'keep-alive' or 'close-when-idle', got ${describe(sseUpstream)}`,
    )
  }

  const adapter = options.adapter
  if (adapter !== undefined && typeof adapter !== 'function') {
    throw new ParleyOptionError('adapter', 'must be a function (sockets) => Adapter')
  }

  const metricsRegistry = metricsOption(options.metrics)
  const forwarding = forwardingOption(options.forwarding)

  const logLevel = options.logLevel ?? defaults.logLevel
  if (typeof logLevel !== 'string' || !LOG_LEVELS.includes(logLevel as LogLevel)) {
    throw new ParleyOptionError(
      'logLevel',
      `must be one of ${LOG_LEVELS.join(', ')}, got ${describe(logLevel)}`,
    )
  }

  const serveClient = options.serveClient ?? defaults.serveClient
  if (typeof serveClient !== 'boolean') {
    throw new ParleyOptionError('serveClient', `must be a boolean, got ${describe(serveClient)}`)
  }

  const successor = options.successor ?? defaults.successor
  if (typeof successor !== 'boolean') {
    throw new ParleyOptionError('successor', `must be a boolean, got ${describe(successor)}`)
  }

  return {
    path: path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path,
    logLevel: logLevel as LogLevel,
    serveClient,
    successor,
    transports,
    pingInterval,
    pingTimeout,
    maxPayload,
    maxBufferedBytes,
    highWaterMark,
    maxPendingAcks,
    maxWaitingEvents,
    allowedOrigins,
    recoveryWindow,
    handoff,
    shutdown,
    handshakeTimeout,
    maxSessions,
    perMessageDeflate,
    pollingCompression,
    closeIdleSseUpstream: sseUpstream === 'close-when-idle',
    adapter: adapter as AdapterFactory | undefined,
    metricsRegistry,
    forwarding,
  }
}

/** The registry of a `metrics` option: `{ registry }`, a prom-client Registry. */
function metricsOption(value: unknown): MetricsRegistry | undefined {
  if (value === undefined) return undefined
  const expected = 'must be { registry } with a prom-client Registry'
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ParleyOptionError('metrics', `${expected}, got ${describe(value)}`)
  }
  const methods = ['registerMetric', 'getSingleMetric', 'metrics'] as const
  // The Registry itself, a likely slip, would be refused for its first private key (`_metrics`).
  if (methods.every((m) => typeof (value as Record<string, unknown>)[m] === 'function')) {
    throw new ParleyOptionError('metrics', `${expected}, got the Registry itself: write { registry }`)
  }
  optionObject('metrics', value, { registry: undefined }, '{ registry }')
  const registry = (value as { registry?: unknown }).registry
  if (
    registry === null ||
    typeof registry !== 'object' ||
    !methods.every((m) => typeof (registry as Record<string, unknown>)[m] === 'function')
  ) {
    throw new ParleyOptionError('metrics.registry', `${expected}, got ${describe(registry)}`)
  }
  return registry as MetricsRegistry
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g

/** Whether `pem` is one certificate Node can read. */
function readable(pem: string): boolean {
  try {
    new X509Certificate(pem)
    return true
  } catch {
    return false
  }
}

function forwardingOption(value: unknown): ResolvedOptions['forwarding'] {
  if (value === undefined) return { ca: undefined }
  const given = optionObject('forwarding', value, { ca: undefined }, '{ ca }')
  const ca = given.ca
  if (ca === undefined) return { ca: undefined }
  const list = Array.isArray(ca) ? ca : [ca]
  const expected = 'must be a certificate (PEM text or bytes) or a non-empty list of them'
  if (list.length === 0 || !list.every((c) => (typeof c === 'string' && c !== '') || Buffer.isBuffer(c))) {
    throw new ParleyOptionError('forwarding.ca', `${expected}, got ${describe(ca)}`)
  }
  // Read now, so that a certificate that cannot be read fails the registration, not every
  // forward (Node's `tls` passes over text that is not PEM without a word).
  for (const item of list as (string | Buffer)[]) {
    const blocks = String(item).match(PEM_CERTIFICATE) ?? []
    if (blocks.length === 0 || !blocks.every(readable)) {
      throw new ParleyOptionError('forwarding.ca', 'must hold certificates in PEM, and one cannot be read')
    }
  }
  return { ca: [...(list as (string | Buffer)[])] }
}

/** 'HTTPS://Example.com:443' -> 'https://example.com'; throws for anything that is not an origin. */
function normaliseOrigin(origin: string): string {
  if (origin === '*')
    throw new ParleyOptionError(
      'allowedOrigins',
      `holds "*": to allow every origin, write '*' alone, not in a list`,
    )
  let url: URL
  try {
    url = new URL(origin)
  } catch {
    throw new ParleyOptionError('allowedOrigins', `holds ${JSON.stringify(origin)}, which is not an origin`)
  }
  if (url.origin === 'null' || url.pathname !== '/' || url.search || url.hash || origin.endsWith('/')) {
    throw new ParleyOptionError(
      'allowedOrigins',
      `holds ${JSON.stringify(origin)}: write scheme://host[:port] without a path`,
    )
  }
  // `https://*.example.com` parses (a `*` may stand in a host), but no browser sends that
  // origin: taken as written, it would refuse every page it was meant to let in.
  if (url.hostname.includes('*')) {
    throw new ParleyOptionError(
      'allowedOrigins',
      `holds ${JSON.stringify(origin)}: origins are matched exactly, with no wildcard; to match a pattern, pass a function (origin) => boolean`,
    )
  }
  return url.origin
}

/** A `boolean | { threshold }` compression option, resolved (threshold in bytes). */
function compression(
  options: ParleyServerOptions,
  key: 'perMessageDeflate' | 'pollingCompression',
  byDefault: boolean,
): false | { threshold: number } {
  const value = options[key] ?? byDefault
  if (value === false) return false
  if (value === true) return { threshold: defaults.compressionThreshold }
  const given = optionObject(key, value, { threshold: undefined }, 'a boolean or { threshold: bytes }')
  const name = `${key}.threshold`
  const threshold = integer({ [name]: given.threshold }, name, defaults.compressionThreshold, 0, 2 ** 30)
  return { threshold }
}
