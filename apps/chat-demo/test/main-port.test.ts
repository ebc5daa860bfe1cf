// `src/main.ts` as a cluster node whose port another process holds: it says so and exits, and
// the other nodes never see it. Its first heartbeat names the port before it listens, so a node
// that joined Redis first could be listed for three heartbeats at another process's address
// (whether its heartbeat beat the failed listen is a race): it must not reach Redis at all. Nor
// must a node given a --rate-period, --handoff-timeout, --handoff-retry-spread,
// --heartbeat-interval, --reconnect-delay or --recovery-window it cannot take.
import http from 'node:http'
import { createClient } from 'redis'
import { afterEach, describe, expect, it } from 'vitest'
import { onFreePort, PortTaken } from '../../../test/support/ports.js'
import { type RedisServer, skipRedisSuites, startRedis } from '../../../test/support/redis-server.js'
import { type ChatNode, startNode, stopNode } from './node-process.js'

describe.skipIf(skipRedisSuites())('a chat node given an option out of range', () => {
  let redis: RedisServer | undefined

  afterEach(async () => {
    await redis?.stop()
  })

  it.each([
    [
      { ratePeriod: 0.5 },
      '--rate-period "0.5": chat demo: option "ratePeriod" must be a whole number of ms from 1 to 3600000',
    ],
    [
      { handoffTimeout: 8000 },
      '--handoff-timeout "8000": chat demo: option "handoff.timeout" must be a whole number of ms from 1 to 7000',
    ],
    [
      { handoffRetrySpread: 0.5 },
      '--handoff-retry-spread "0.5": chat demo: option "handoff.retrySpread" must be a whole number of ms from 0 to 30000',
    ],
    [
      { heartbeatInterval: 5 },
      '--heartbeat-interval "5": chat demo: option "heartbeatInterval" must be a whole number of ms from 10 to 60000',
    ],
    [
      { recoveryWindow: 5000 },
      '--recovery-window "5000": chat demo: option "recoveryWindow" must be a whole number of ms from 7000 to 600000',
    ],
    [
      { recoveryWindow: 10_000, handoffRetrySpread: 20_000 },
      '--handoff-retry-spread "20000": chat demo: option "handoff.retrySpread" must be a whole number of ms from 0 to 10000',
    ],
    [
      { reconnectDelay: 70_000 },
      '--reconnect-delay "70000": chat demo: option "reconnectDelay" must be a whole number of ms from 1 to 60000',
    ],
  ] as const)('%o: exits saying what it takes, and never joins the cluster', async (options, said) => {
    redis = await startRedis()
    const client = createClient({ url: redis.url })
    await client.connect()
    try {
      const connections = async () => /total_connections_received:(\d+)/.exec(await client.info('stats'))?.[1]
      const before = await connections()
      await expect(startNode('odd', 0, redis.url, options)).rejects.toThrow(said)
      expect(await connections()).toBe(before)
      expect(await client.keys('parley:node*')).toEqual([])
    } finally {
      await client.close()
    }
  })
})

describe.skipIf(skipRedisSuites())('a chat node started on a port another process holds', () => {
  let redis: RedisServer | undefined
  let other: http.Server | undefined

  afterEach(async () => {
    await redis?.stop()
    await new Promise((resolve) => other?.close(resolve) ?? resolve(undefined))
  })

  it('exits saying the port is taken, and never joins the cluster', async () => {
    redis = await startRedis()
    other = http.createServer((_req, res) => res.end('another server'))
    await new Promise<void>((resolve) => other?.listen(0, '127.0.0.1', resolve))
    const taken = (other.address() as { port: number }).port
    const client = createClient({ url: redis.url })
    await client.connect()
    try {
      const connections = async () => /total_connections_received:(\d+)/.exec(await client.info('stats'))?.[1]
      const before = await connections()
      const started = startNode('late', taken, redis.url)
      await expect(started).rejects.toBeInstanceOf(PortTaken)
      // The demo's own words, with the way out.
      await expect(started).rejects.toThrow(`port ${taken} is taken; start it on another one`)
      // Not one connection to Redis: no record, no note, no index entry, nothing to forward to.
      expect(await connections()).toBe(before)
      expect(await client.keys('parley:node*')).toEqual([])
    } finally {
      await client.close()
    }
  })
})

describe.skipIf(skipRedisSuites())('a chat node given --heartbeat-interval', () => {
  let redis: RedisServer | undefined
  let node: ChatNode | undefined

  afterEach(async () => {
    if (node) await stopNode(node, 'SIGKILL')
    await redis?.stop()
  })

  it('beats at that interval: its record in the live set lasts three of them', async () => {
    redis = await startRedis()
    node = await onFreePort((port) =>
      startNode('quick', port, (redis as RedisServer).url, { heartbeatInterval: 300 }),
    )
    const client = createClient({ url: redis.url })
    await client.connect()
    try {
      // The node's record (`parley:node:<id>`, beside its `:address`, `:note`... records) expires
      // three heartbeats after its last one: 900 ms here, 6000 with the adapter's default.
      const records = (await client.keys('parley:node:*')).filter((key) => /^parley:node:[^:]+$/.test(key))
      expect(records).toHaveLength(1)
      const ttl = await client.pTTL(records[0] as string)
      expect(ttl).toBeGreaterThan(0)
      expect(ttl).toBeLessThanOrEqual(900)
    } finally {
      await client.close()
    }
  })
})
