import { type RedisAdapter, redisAdapter } from '@parley/redis'
import type { AdapterFactory } from '@parley/server'
import { createClient } from 'redis'
import { RedisStore } from './redis-store.js'

export interface ChatCluster {
  /** The adapter for `buildChatApp({ adapter })`. */
  adapter: AdapterFactory
  /** The rooms and history every node on this Redis shares, for `buildChatApp({ store })`. */
  store: RedisStore
  /** Closes the Redis connection (after the app closed). */
  close(): Promise<void>
}

/**
 * Connects to Redis and makes the adapter that joins this chat server to the others on the
 * same Redis (presence, messages and typing reach people on every node), and the store they
 * share (the rooms list and each room's history). One connection serves both.
 */
export async function connectRedis(
  url: string,
  options: { label?: string; address?: string } = {},
): Promise<ChatCluster> {
  const label = options.label ?? 'Parley chat'
  // A first connection that fails is an error; after that, node-redis reconnects by itself.
  let connected = false
  let lastError = ''
  const client = createClient({
    url,
    socket: { reconnectStrategy: (retries) => (connected ? Math.min(retries * 100, 2000) : false) },
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
  const factory = redisAdapter({ client, ...(options.address ? { address: options.address } : {}) })
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
