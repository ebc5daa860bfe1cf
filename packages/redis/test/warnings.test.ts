// The adapter's warnings: at most one line per kind every 10 s, and what was held back said when
// the adapter closes, so that the last counts of an outage are not lost.
import { redisAdapter } from '@parley/redis'
import { createClient } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RedisServer, skipRedisSuites, startRedis } from '../../../test/support/redis-server.js'
import { until } from '../../server/test/helpers.js'
import { FakeSockets } from './handoff-support.js'

describe.skipIf(skipRedisSuites())("the adapter's warnings", () => {
  let redis: RedisServer

  beforeAll(async () => {
    redis = await startRedis()
  })

  afterAll(() => redis?.stop())

  it('are one line per kind at once, and the rest with its count at close', async () => {
    const client = createClient({ url: redis.url })
    await client.connect()
    const lines: { message: string; times: unknown }[] = []
    const adapter = redisAdapter({
      client,
      prefix: 'warnings',
      log: { warn: (details, message) => lines.push({ message, times: details.times }) },
    })(new FakeSockets())
    try {
      await adapter.ready()
      // Three messages on the nodes' channel that no node could have sent.
      for (let i = 0; i < 3; i++) await client.publish('warnings:membership', 'not a message')
      await until(() => lines.length === 1)
      // Heard by then: a PING answered comes after the messages published before it.
      await client.ping()
      const heard = 'a message from another node was malformed and was dropped'
      expect(lines).toEqual([{ message: `@parley/redis: ${heard}`, times: 1 }])
      await adapter.close()
      expect(lines).toEqual([
        { message: `@parley/redis: ${heard}`, times: 1 },
        { message: `@parley/redis: ${heard}`, times: 2 },
      ])
    } finally {
      await adapter.close()
      await client.quit()
    }
  })
})
