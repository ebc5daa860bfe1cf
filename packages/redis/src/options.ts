import { closestName } from '@parley/protocol'

/**
 * The few calls of a node-redis client (`redis` 6) that the adapter makes. Any client made by
 * `createClient()` fits; the adapter only needs this much of it, so the shape is spelled out
 * here rather than tied to the client's generics (modules, scripts, RESP version).
 */
export interface RedisClient {
  /** True while connected or reconnecting; false once closed. */
  readonly isOpen: boolean
  /** True while a command can be sent at once (connected, not reconnecting). */
  readonly isReady: boolean
  sendCommand(args: string[]): Promise<unknown>
  /** A new client with the same options, not connected yet: the adapter's subscriber. */
  duplicate(): RedisSubscriber
  /**
   * The options the client was made with (node-redis has them): only where it connects is
   * read, to name that address in errors, without credentials.
   */
  readonly options?: unknown
  /**
   * node-redis says `'ready'` each time its connection is up again: steps kept for Redis (see
   * `Undos`) go then, without waiting for the adapter's next command. A client without it sends
   * them before that command.
   */
  on?(event: 'ready', listener: () => void): unknown
  /** Removes the `'ready'` listener when the adapter closes (the client is the application's). */
  off?(event: 'ready', listener: () => void): unknown
}

/** The connection the adapter makes for itself (`client.duplicate()`), in subscriber mode. */
export interface RedisSubscriber {
  connect(): Promise<unknown>
  subscribe(channels: string[], listener: (message: string, channel: string) => unknown): Promise<void>
  on(event: 'error', listener: (error: Error) => void): unknown
  /**
   * node-redis says `'ready'` once its connection is up again and its channels subscribed
   * again: what was published on them meanwhile never reaches it (see cut.ts).
   */
  on(event: 'ready', listener: () => void): unknown
  /** Closes the connection at once, pending commands rejected. */
  destroy(): void
  readonly isOpen: boolean
  /**
   * node-redis: true while its connection is up (and, once subscribed, subscribed again). False:
   * the adapter claims no session meanwhile (see `claimSession`). One without it is taken as up.
   */
  readonly isReady?: boolean
}

/** Where the adapter writes warnings: `app.log` fits, and so does the default. */
export interface RedisAdapterLog {
  warn(details: Record<string, unknown>, message: string): void
}

/** Options of `redisAdapter()`. Every one is checked when it is called. */
export interface RedisAdapterOptions {
  /**
   * An open node-redis client: `connect()` called, connected or still connecting (`ready()`
   * tells when the adapter has joined the others). The adapter sends its commands and PUBLISHes
   * on it and makes one more connection, `client.duplicate()`, to subscribe. It never closes
   * this client: the application does.
   */
  client: RedisClient
  /** Every key and channel starts with this. Default 'parley'. */
  prefix?: string
  /**
   * This node's base URL for the requests other nodes forward to it (`http://10.0.0.7:3000`;
   * `https://` behind TLS). A path in it goes in front of every request sent there: a node a
   * proxy serves under `/node-a` is `http://proxy/node-a`. Default: the address the server
   * listens on (`LocalSockets.url()`), which other nodes may not reach behind NAT or in
   * containers.
   */
  address?: string
  /**
   * Milliseconds to wait for the other nodes' answers to a cluster query (and their counts for a
   * broadcast with acks), and the longest wait for Redis itself, for every command the adapter
   * sends; `ready()` waits that long too. Default 5000.
   */
  requestTimeout?: number
  /**
   * Milliseconds between heartbeats. A node that misses three drops out of the live set (its
   * record expires), which the others notice at their next heartbeat. Default 2000.
   */
  heartbeatInterval?: number
  /** Where warnings go (`app.log` fits). Default: `console.warn`. */
  log?: RedisAdapterLog
}

/** Options after validation, every default filled in: what the `RedisAdapter` constructor takes. */
export interface ResolvedRedisOptions {
  client: RedisClient
  prefix: string
  address: string | undefined
  requestTimeout: number
  heartbeatInterval: number
  log: RedisAdapterLog
}

/** The defaults `redisAdapter()` fills in (`requestTimeout` and `heartbeatInterval` in ms). */
export const defaults = {
  prefix: 'parley',
  requestTimeout: 5000,
  heartbeatInterval: 2000,
} as const

/** Thrown by `redisAdapter()` when an option is wrong; the message names the option. */
export class RedisAdapterOptionError extends TypeError {
  override readonly name = 'RedisAdapterOptionError'
  readonly code = 'PARLEY_INVALID_OPTION'
  /** The option at fault. */
  readonly option: string

  constructor(option: string, message: string, options?: { cause?: unknown }) {
    super(`@parley/redis: option "${option}" ${message}`, options)
    this.option = option
  }
}

const known = new Set(['client', 'prefix', 'address', 'requestTimeout', 'heartbeatInterval', 'log'])

// Timers above this overflow setTimeout's 32-bit delay and would fire at once.
const MAX_DELAY = 2 ** 31 - 1

const consoleLog: RedisAdapterLog = {
  warn: (details, message) => console.warn(message, details),
}

/**
 * Checks every option and fills in the defaults. Throws RedisAdapterOptionError naming the bad
 * one; options that throw when read (a Proxy whose traps throw, a getter that throws) are refused
 * so too, as `'options'`, with what they threw as `cause`.
 */
export function resolveRedisOptions(input: unknown): ResolvedRedisOptions {
  try {
    return resolve(input)
  } catch (error) {
    if (isOptionError(error)) throw error
    throw new RedisAdapterOptionError('options', 'cannot be read: reading them, or one of them, threw', {
      cause: error,
    })
  }
}

/** `error instanceof RedisAdapterOptionError`, false where that throws (a revoked Proxy thrown). */
function isOptionError(error: unknown): boolean {
  try {
    return error instanceof RedisAdapterOptionError
  } catch {
    return false
  }
}

function resolve(input: unknown): ResolvedRedisOptions {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new RedisAdapterOptionError('options', 'must be an object with at least `client`')
  }
  const options = input as Record<string, unknown>
  // `adapter: redisAdapter`, not called: the server calls it with its own sockets, whose first
  // key would be refused as an unknown option, which says nothing of the mistake.
  if (
    !('client' in options) &&
    typeof options.hasSession === 'function' &&
    typeof options.serve === 'function'
  ) {
    throw new RedisAdapterOptionError(
      'options',
      "got the server's sockets: give the server's `adapter` option what redisAdapter() returns (`adapter: redisAdapter({ client })`), not redisAdapter itself",
    )
  }
  // `redisAdapter(redis)`: a node-redis client keeps no own keys, so nothing below would name it.
  if (
    !('client' in options) &&
    typeof options.sendCommand === 'function' &&
    typeof options.duplicate === 'function'
  ) {
    throw new RedisAdapterOptionError('options', 'got a Redis client itself: write redisAdapter({ client })')
  }
  for (const key of Object.keys(options)) {
    if (!known.has(key)) {
      const meant = closestName(key, known)
      throw new RedisAdapterOptionError(
        key,
        `is not an option of redisAdapter()${meant === undefined ? '' : `: did you mean "${meant}"?`}`,
      )
    }
  }
  return {
    client: client(options.client),
    prefix: prefix(options.prefix),
    address: address(options.address),
    requestTimeout: integer(options, 'requestTimeout', defaults.requestTimeout, 1, MAX_DELAY),
    heartbeatInterval: integer(options, 'heartbeatInterval', defaults.heartbeatInterval, 10, 60_000),
    log: log(options.log),
  }
}

function client(value: unknown): RedisClient {
  const candidate = value as Partial<Record<keyof RedisClient, unknown>> | null | undefined
  if (
    candidate === null ||
    typeof candidate !== 'object' ||
    typeof candidate.sendCommand !== 'function' ||
    typeof candidate.duplicate !== 'function'
  ) {
    throw new RedisAdapterOptionError(
      'client',
      `must be a node-redis client (createClient()), got ${describe(value)}`,
    )
  }
  if (candidate.isOpen !== true) {
    // Open, not connected: a client still connecting is enough, and awaiting connect() with
    // Redis down waits for good (the README's "Waiting for Redis at startup").
    throw new RedisAdapterOptionError(
      'client',
      'must be open: call client.connect() first (no need to await it; bound the wait with adapter.ready())',
    )
  }
  return value as RedisClient
}

function prefix(value: unknown): string {
  if (value === undefined) return defaults.prefix
  // Keys and channels are `<prefix>:...`: whitespace or a wildcard in it would surprise. Counted
  // in characters (code points, the `u` flag), as a user counts them, not in UTF-16 units. A lone
  // surrogate (half of a pair) is no character: sent as UTF-8 it becomes U+FFFD, and prefixes
  // that differ would name the same keys.
  if (typeof value !== 'string' || !/^[^\s*?[\]]{1,100}$/u.test(value) || /\p{Cs}/u.test(value)) {
    throw new RedisAdapterOptionError(
      'prefix',
      `must be 1 to 100 characters (code points: an emoji is one) without whitespace (spaces, tabs, line breaks, no-break spaces) or * ? [ ], and no lone surrogate (half of a UTF-16 pair), got ${describe(value)}`,
    )
  }
  return value
}

function address(value: unknown): string | undefined {
  if (value === undefined) return undefined
  let url: URL | undefined
  try {
    url = typeof value === 'string' ? new URL(value) : undefined
  } catch {
    url = undefined
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.search || url.hash) {
    throw new RedisAdapterOptionError(
      'address',
      `must be an http:// or https:// URL such as "http://10.0.0.7:3000", got ${describe(value)}`,
    )
  }
  return (value as string).replace(/\/+$/, '')
}

function log(value: unknown): RedisAdapterLog {
  if (value === undefined) return consoleLog
  if (value === null || typeof value !== 'object' || typeof (value as RedisAdapterLog).warn !== 'function') {
    throw new RedisAdapterOptionError(
      'log',
      `must have a warn(details, message) method, got ${describe(value)}`,
    )
  }
  return value as RedisAdapterLog
}

function integer(options: Record<string, unknown>, key: string, fallback: number, min: number, max: number) {
  const value = options[key]
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RedisAdapterOptionError(key, `must be an integer from ${min} to ${max}, got ${describe(value)}`)
  }
  return value
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'function') return 'a function'
  if (value === null || typeof value !== 'object') return String(value)
  try {
    if (Array.isArray(value)) return 'an array'
  } catch {
    // A revoked Proxy: an object all the same.
  }
  return 'an object'
}

/**
 * What messages name for a client that gives no `options` (not node-redis': a wrapper of it
 * that does not pass them on, say). Written to read right where an address does ("Redis at
 * ...", "the subscriber connection to ...").
 */
export const UNNAMED_REDIS_ADDRESS = "the client's address"

/**
 * Where `client` connects, for messages: `redis://host:port` (`rediss://` over TLS) or
 * `unix:<path>`, from the socket options node-redis derives from its `url`, so that no user
 * name or password is ever part of it; node-redis' own default, `redis://localhost:6379`, for
 * a client made without a `url` or `socket` (node-redis then has no socket options to read);
 * `UNNAMED_REDIS_ADDRESS` when the client gives no options.
 */
export function redisAddress(client: RedisClient): string {
  let options: unknown
  let socket: unknown
  try {
    options = client.options
    socket = (options as { socket?: unknown } | undefined)?.socket
  } catch {
    return UNNAMED_REDIS_ADDRESS
  }
  if (options === null || typeof options !== 'object') return UNNAMED_REDIS_ADDRESS
  if (socket === undefined) return 'redis://localhost:6379'
  if (socket === null || typeof socket !== 'object') return UNNAMED_REDIS_ADDRESS
  const { path, host, port, tls } = socket as {
    path?: unknown
    host?: unknown
    port?: unknown
    tls?: unknown
  }
  if (typeof path === 'string') return `unix:${path}`
  const name = typeof host === 'string' && host !== '' ? host : 'localhost'
  const at = typeof port === 'number' || typeof port === 'string' ? String(port) : '6379'
  return `${tls === true ? 'rediss' : 'redis'}://${name.includes(':') ? `[${name}]` : name}:${at}`
}
