import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import parley, { type AdapterFactory } from '@parley/server'
import Fastify, { type FastifyInstance } from 'fastify'
import { type ChatData, setUpChat } from './chat.js'
import { type ClientEvents, Limits, type ServerEvents } from './shared.js'
import { type ChatStore, MemoryStore } from './store.js'

const publicDir = new URL('../public/', import.meta.url)
const clientBundle = createRequire(import.meta.url).resolve('@parley/client/parley.min.js')

// Everything the page loads comes from this server; inline scripts and styles are refused, so
// a message that slipped past text rendering still could not run.
const csp = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ')

const assets: Record<string, { file: URL | string; type: string }> = {
  '/': { file: new URL('index.html', publicDir), type: 'text/html; charset=utf-8' },
  '/style.css': { file: new URL('style.css', publicDir), type: 'text/css; charset=utf-8' },
  '/app.js': { file: new URL('app.js', publicDir), type: 'text/javascript; charset=utf-8' },
  '/parley.min.js': { file: clientBundle, type: 'text/javascript; charset=utf-8' },
}

export interface ChatAppOptions {
  /** Fastify's log: off by default, `true` for everything from `info` up, or `{ level }`. */
  logger?: boolean | { level: 'info' | 'warn' | 'error' }
  /** How long a session that lost its connection stays (and shows in presence), in ms. */
  recoveryWindow?: number
  /**
   * Rooms and history. Defaults to a new, empty `MemoryStore`; pass the store of the app this
   * one replaces to keep them across a restart. The nodes of a cluster share one `RedisStore`
   * (`connectRedis(url)` makes it).
   */
  store?: ChatStore
  /**
   * Carries rooms, broadcasts and presence across several nodes (`redisAdapter` from
   * `@parley/redis`). Default: this node alone, in memory.
   */
  adapter?: AdapterFactory
  /**
   * The time this node writes on each message (`at`), in ms since the epoch; `Date.now` by
   * default. Nothing is ordered by it (see `ChatMessage.seq`): a test gives one node of a cluster
   * a clock that is off, as a real node's may be.
   */
  clock?: () => number
  /**
   * Parley's drain with handoff (`timeout`, `retrySpread`: see `@parley/server`'s `handoff`
   * option), when the adapter stores sessions. Parley's defaults if left out; a bad value is
   * refused by Parley (PARLEY_INVALID_OPTION). A test shortens the drain's wait with it.
   */
  handoff?: { timeout?: number; retrySpread?: number }
  /**
   * What a page whose session ends at close is told (Parley's `shutdown` option: come back after
   * `retryAfter` ms plus up to `retrySpread`). Parley's defaults (1 s plus up to 1 s) if left
   * out; a bad value is refused by Parley (PARLEY_INVALID_OPTION). A test that restarts a server
   * shortens the pages' wait with it.
   */
  shutdown?: { retryAfter?: number; retrySpread?: number }
  /**
   * The window of the message rate limit, in ms: `Limits.rate` messages per window per socket.
   * `Limits.ratePeriod` (5000) by default; a whole number from 1 to `MAX_RATE_PERIOD`, else
   * `buildChatApp` rejects with a `ChatOptionError` (PARLEY_INVALID_OPTION). A test shortens it
   * to see a refused message sent again without waiting out five seconds.
   */
  ratePeriod?: number
}

/** The longest `ratePeriod`: an hour (the page waits out a refusal's `retryIn` with a timer). */
export const MAX_RATE_PERIOD = 3_600_000

/** A chat option out of its range (Parley's own options are refused by Parley, with the same code). */
export class ChatOptionError extends TypeError {
  override readonly name = 'ChatOptionError'
  readonly code = 'PARLEY_INVALID_OPTION'

  constructor(
    readonly option: string,
    message: string,
  ) {
    super(`chat demo: option "${option}" ${message}`)
  }
}

/**
 * Throws a `ChatOptionError` on `option` unless `ms` is a whole number of ms from `min` to `max`:
 * the one check of every duration the chat takes (each has its own bounds, below).
 */
export function checkMs(option: string, ms: number, min: number, max: number): void {
  if (!Number.isInteger(ms) || ms < min || ms > max) {
    throw new ChatOptionError(option, `must be a whole number of ms from ${min} to ${max}`)
  }
}

/** Throws a `ChatOptionError` unless `ratePeriod` is a whole number of ms from 1 to `MAX_RATE_PERIOD`. */
export function checkRatePeriod(ratePeriod: number): void {
  checkMs('ratePeriod', ratePeriod, 1, MAX_RATE_PERIOD)
}

/**
 * The longest `--handoff-timeout` a node takes: Fastify gives each preClose hook 10 s
 * (`pluginTimeout`; onClose hooks it does not time), and Parley's drain, in its preClose hook,
 * waits 2 s for the sessions' seals after the wait for claims (Parley refuses a timeout that
 * leaves none of the 10 s); the rest is a margin.
 */
export const MAX_HANDOFF_TIMEOUT = 7000

/** Throws a `ChatOptionError` unless `timeout` is a whole number of ms from 1 to `MAX_HANDOFF_TIMEOUT`. */
export function checkHandoffTimeout(timeout: number): void {
  checkMs('handoff.timeout', timeout, 1, MAX_HANDOFF_TIMEOUT)
}

/** How long a session that lost its connection stays, in ms, unless `recoveryWindow` says otherwise. */
export const DEFAULT_RECOVERY_WINDOW = 30_000

/**
 * The range of `--recovery-window`: at least the longest drain's wait (`MAX_HANDOFF_TIMEOUT`), so
 * that a page told to come back during a deploy finds its session; at most ten minutes of someone
 * listed after they left.
 */
export const MIN_RECOVERY_WINDOW = MAX_HANDOFF_TIMEOUT
export const MAX_RECOVERY_WINDOW = 600_000

/**
 * Throws a `ChatOptionError` unless `window` is a whole number of ms from `MIN_RECOVERY_WINDOW` to
 * `MAX_RECOVERY_WINDOW`.
 */
export function checkRecoveryWindow(window: number): void {
  checkMs('recoveryWindow', window, MIN_RECOVERY_WINDOW, MAX_RECOVERY_WINDOW)
}

/**
 * Throws a `ChatOptionError` unless `spread` is a whole number of ms from 0 to `window`, the
 * recovery window of the sessions a drain hands off: a page told to come back later than that
 * would find its session gone.
 */
export function checkHandoffRetrySpread(spread: number, window = DEFAULT_RECOVERY_WINDOW): void {
  checkMs('handoff.retrySpread', spread, 0, window)
}

/** Builds the chat server (not listening yet), so that tests can start it on port 0. */
export async function buildChatApp(options: ChatAppOptions = {}): Promise<FastifyInstance> {
  const { ratePeriod = Limits.ratePeriod } = options
  checkRatePeriod(ratePeriod)
  const app = Fastify({ logger: options.logger ?? false })

  app.addHook('onSend', async (_request, reply) => {
    reply.header('Content-Security-Policy', csp)
    reply.header('X-Content-Type-Options', 'nosniff')
    reply.header('Referrer-Policy', 'no-referrer')
  })

  for (const [url, asset] of Object.entries(assets)) {
    app.get(url, async (_request, reply) => reply.type(asset.type).send(await readFile(asset.file)))
  }

  await app.register(parley, {
    path: '/parley',
    recovery: { window: options.recoveryWindow ?? DEFAULT_RECOVERY_WINDOW },
    ...(options.adapter ? { adapter: options.adapter } : {}),
    ...(options.handoff ? { handoff: options.handoff } : {}),
    ...(options.shutdown ? { shutdown: options.shutdown } : {}),
  })
  // The app.parley decoration is untyped; the chat narrows it to its own event maps.
  const chat = setUpChat(
    app.parley.typed<ClientEvents, ServerEvents, ChatData>(),
    options.store ?? new MemoryStore(),
    app.log,
    options.clock,
    ratePeriod,
  )
  // Nothing of the chat's waits at close. The rooms of the sessions nobody claimed are told who is
  // left by the nodes that stay, once this one has left the cluster (see `onNodesChange` in
  // chat.ts), and not by this node after its drain: a people list is a cluster-wide lookup, which
  // waits up to the adapter's `requestTimeout` (5 s) for a node that died and is still in the
  // live set, and would hold the close (and the deploy) that long; nor could it tell anyone if
  // this node died in the middle of its drain.
  app.addHook('onClose', async () => chat.close())

  return app
}
