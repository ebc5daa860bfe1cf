import type { LocalSockets } from '@parley/server'
import { RedisAdapter } from './adapter.js'
import { type RedisAdapterOptions, resolveRedisOptions } from './options.js'

export { RedisAdapter, UNDO_AT_CLOSE_MS } from './adapter.js'
export { HANDOFF_ASKED_MS } from './ask-handoff.js'
export { MAX_QUEUED_COMMANDS, MAX_UNANSWERED_COMMANDS, MAX_UNANSWERED_PUBLISHES } from './commands.js'
export { MAX_ENDED_MESSAGE, MAX_ENDED_RECORDS } from './ended.js'
export { CLAIM_KEEP_MS, UNCLAIM_KEEP_MS } from './handoff.js'
export { GOODBYE_MS } from './nodes.js'
export type { NodesChange, NodesChangeListener } from './nodes-change.js'
export {
  defaults,
  type RedisAdapterLog,
  RedisAdapterOptionError,
  type RedisAdapterOptions,
  type RedisClient,
  type RedisSubscriber,
  type ResolvedRedisOptions,
} from './options.js'
export { RedisBusyError, RedisErrorCode, RedisRefusedError, RedisUnreachableError } from './send.js'
export type { RedisAdapterStats } from './stats.js'
export { MAX_QUEUED_TAIL_APPENDS, MAX_QUEUED_TAIL_BYTES } from './tail-writes.js'
export { SEAL_WAIT_MS } from './takeover.js'
export { MAX_KEPT_UNDOS } from './undos.js'

/**
 * The `adapter` option of `@parley/server` for several nodes joined by Redis. Checks every
 * option now (a bad one throws `RedisAdapterOptionError`, a TypeError that names it); the
 * server makes the adapter when it registers, reachable then as `app.parley.adapter`.
 *
 * ```ts
 * const redis = createClient({ url: process.env.REDIS_URL })
 * await redis.connect()
 * await app.register(parley, { path: '/parley', adapter: redisAdapter({ client: redis }) })
 * ```
 */
export function redisAdapter(options: RedisAdapterOptions): (sockets: LocalSockets) => RedisAdapter {
  const resolved = resolveRedisOptions(options)
  return (sockets) => new RedisAdapter(sockets, resolved)
}
