import { type RedisAdapter, redisAdapter } from '@parley/redis'
import type { AdapterFactory } from '@parley/server'
import { createClient } from 'redis'
import { checkMs } from './app.js'
import { RedisStore } from './redis-store.js'

export interface ChatCluster {
  /** The adapter for `buildChatApp({ adapter })`. */
  adapter: AdapterFactory
  /** The rooms and history every node on this Redis shares, for `buildChatApp({ store })`. */
  store: RedisStore
  /** Closes the Redis connection (after the app closed). */
  close(): Promise<void>
}

/** What `connectRedis` takes besides the URL. */
export interface ClusterOptions {
  /** The node's name in what it logs (`Parley chat` by default). */
  label?: string
  /** Where the other nodes forward this node's requests (`redisAdapter`'s `address`). */
  address?: string
  /**
   * `redisAdapter`'s `heartbeatInterval`, in ms: a node that misses three heartbeats is gone, and
   * the others see it within four. The adapter's 2000 by default; a whole number from
   * `MIN_HEARTBEAT_INTERVAL` to `MAX_HEARTBEAT_INTERVAL`, else a `ChatOptionError`. A test
   * shortens it to see a killed node leave the live set in a second or two rather than eight.
   */
  heartbeatInterval?: number
  /**
   * The longest wait between two tries to reach Redis again once the connection dropped, in ms
   * (the waits grow by 100 ms a try up to it). `DEFAULT_RECONNECT_DELAY` (2000) by default; a
   * whole number from 1 to `MAX_RECONNECT_DELAY`, else a `ChatOptionError`. A test shortens it
   * so that a Redis that is back is found at once.
   */
  reconnectDelay?: number
}

/** The adapter's own bounds on `heartbeatInterval`, checked here before Redis is reached. */
export const MIN_HEARTBEAT_INTERVAL = 10
export const MAX_HEARTBEAT_INTERVAL = 60_000
export const DEFAULT_RECONNECT_DELAY = 2000
/** A minute: longer, and a node would stay off Redis long after it came back. */
export const MAX_RECONNECT_DELAY = 60_000

/** Throws a `ChatOptionError` unless `interval` is a whole number of ms the adapter takes. */
export function checkHeartbeatInterval(interval: number): void {
  checkMs('heartbeatInterval', interval, MIN_HEARTBEAT_INTERVAL, MAX_HEARTBEAT_INTERVAL)
}

/** Throws a `ChatOptionError` unless `delay` is a whole number of ms from 1 to `MAX_RECONNECT_DELAY`. */
export function checkReconnectDelay(delay: number): void {
  checkMs('reconnectDelay', delay, 1, MAX_RECONNECT_DELAY)
}

/** The wait before reconnect try `retries` (from 0): 100 ms more each try, up to `longest`. */
export function reconnectWait(retries: number, longest: number): number {
  return Math.min(retries * 100, longest)
}

/**
 * Connects to Redis and makes the adapter that joins this chat server to the others on the
 * same Redis (presence, messages and typing reach people on every node), and the store they
 * share (the rooms list and each room's history). One connection serves both.
 */
export async function connectRedis(url: string, options: ClusterOptions = {}): Promise<ChatCluster> {
  // Checked before anything reaches Redis: a node refused never shows in the live set.
  const { heartbeatInterval, reconnectDelay = DEFAULT_RECONNECT_DELAY } = options
  if (heartbeatInterval !== undefined) checkHeartbeatInterval(heartbeatInterval)
  checkReconnectDelay(reconnectDelay)
  const label = options.label ?? 'Parley chat'
  // A first connection that fails is an error; after that, node-redis reconnects by itself.
  let connected = false
  let lastError = ''
  const client = createClient({
    url,
    socket: { reconnectStrategy: (retries) => (connected ? reconnectWait(retries, reconnectDelay) : false) },
  })
  client.on('error', (error: Error) => {
    if (connected && error.message !== lastError)
      console.error(`${label}: Redis: ${error.message} (reconnecting)`)
    lastError = error.message
  })
  client.on('ready', () => {
    if (lastError !== '' && connected) console.error(`${label}: Redis is back.`)
    lastError = ''
  })
  await client.connect()
  connected = true
  const factory = redisAdapter({
    client,
    ...(options.address ? { address: options.address } : {}),
    ...(heartbeatInterval !== undefined ? { heartbeatInterval } : {}),
  })
  // Kept so that close() can end the adapter's own subscriber connection before the client.
  let adapter: RedisAdapter | undefined
  return {
    store: new RedisStore(client),
    adapter: (sockets) => {
      adapter = factory(sockets)
      return adapter
    },
    close: async () => {
      await adapter?.close()
      if (client.isOpen) await client.close()
    },
  }
}
