// The Redis address the adapter's messages name (see `redisAddress` in src/options.ts): where
// the client connects, never its credentials, and never the word "Redis" in its place, which
// made lines read "Redis at Redis is not reachable".
import { createClient } from 'redis'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { Commands } from '../src/commands.js'
import { type RedisClient, redisAddress } from '../src/options.js'
import { fakeClusterSuite } from './handoff-support.js'

/** `client`'s error when Redis is not connected, as a warning of the adapter carries it. */
async function notConnected(client: RedisClient): Promise<string> {
  const commands = new Commands(client, 300)
  try {
    await commands.send(['PUBLISH', 'channel', 'lost'])
    return 'sent'
  } catch (err) {
    return err instanceof Error ? err.message : String(err)
  } finally {
    commands.stop()
  }
}

describe('the Redis address in messages', () => {
  it("names node-redis' default for a client made without a URL, as a README example run without REDIS_URL", async () => {
    // Never connected: nothing leaves the process.
    for (const client of [createClient(), createClient({ url: undefined })]) {
      expect(redisAddress(client)).toBe('redis://localhost:6379')
      expect(await notConnected(client)).toBe(
        '@parley/redis: Redis at redis://localhost:6379 is not reachable (not connected)',
      )
    }
  })

  it('names host and port alone, over TLS too', () => {
    expect(redisAddress(createClient({ url: 'rediss://someone:s3cret@10.0.0.5:7000/2' }))).toBe(
      'rediss://10.0.0.5:7000',
    )
    expect(redisAddress(createClient({ socket: { port: 7001 } }))).toBe('redis://localhost:7001')
  })

  it('says it does not know for a client that gives no options', async () => {
    const client: RedisClient = {
      isOpen: true,
      isReady: false,
      sendCommand: () => Promise.reject(new Error('not used')),
      duplicate: () => {
        throw new Error('not used')
      },
    }
    expect(await notConnected(client)).toBe(
      "@parley/redis: Redis at the client's address is not reachable (not connected)",
    )
  })
})

describe.skipIf(skipRedisSuites())("the fake cluster's nodes", () => {
  const suite = fakeClusterSuite()

  it('name the address of the Redis they connect to, as a real node would', async () => {
    const cluster = suite.cluster()
    const [a] = await cluster.start(1)
    a!.down = true
    const port = (a!.redis.options?.socket as { port?: number } | undefined)?.port
    expect(port).toBeTypeOf('number')
    await expect(a!.adapter.sessionOwner('sid')).rejects.toThrow(
      `@parley/redis: Redis at redis://127.0.0.1:${port} is not reachable (not connected)`,
    )
    a!.down = false
  })
})
