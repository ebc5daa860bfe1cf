// An adapter closed while its subscriber connection is still connecting: node-redis's destroy()
// has no socket to close yet then, and the connect goes on to completion. The adapter must close
// that connection once it is up, subscribe nothing on it, and say nothing about it.
import type { LookupOptions } from 'node:dns'
import type { LookupFunction } from 'node:net'
import { redisAdapter } from '@parley/redis'
import parley from '@parley/server'
import Fastify from 'fastify'
import { createClient } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RedisServer, skipRedisSuites, startRedis } from '../../../test/support/redis-server.js'
import { releaseAll } from '../../../test/support/release.js'
import { unheard } from '../../../test/support/unheard.js'
import { sleep, until } from '../../server/test/helpers.js'

/** Asks until `check` answers true, at most `ms`: each answer awaited before the next asking. */
async function untilAnswered(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms
  while (!(await check())) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

describe.skipIf(skipRedisSuites())('an adapter closed while its subscriber connects', () => {
  let redis: RedisServer | undefined
  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => {
    await redis?.stop()
  })

  it('closes that connection once it is up, subscribed to nothing, with no warning', async () => {
    const port = redis!.port
    // Where the client connects is looked up by name: a lookup held here holds the subscriber's
    // connect (the adapter's `client.duplicate()` shares the client's socket options) before
    // its socket exists, the window where destroy() cannot reach it.
    let holding = false
    const held: (() => void)[] = []
    const lookup: LookupFunction = (_host: string, options: LookupOptions, callback) => {
      const answer = () =>
        options.all ? callback(null, [{ address: '127.0.0.1', family: 4 }]) : callback(null, '127.0.0.1', 4)
      if (holding) held.push(answer)
      else answer()
    }
    // Its notices of Redis Enterprise maintenance are off: they look the name up with the
    // system's resolver, where it means nothing.
    const client = createClient({
      socket: { host: 'parley-redis.test', port, lookup },
      maintNotifications: 'disabled',
    })
    client.on('error', () => {})
    // Asks Redis what it holds, from a connection of its own.
    const checker = createClient({ url: redis!.url })
    checker.on('error', () => {})
    const app = Fastify()
    const warnings: string[] = []
    try {
      await Promise.all([client.connect(), checker.connect()])
      const connections = async () =>
        (await checker.sendCommand(['CLIENT', 'LIST'])).toString().trim().split('\n').length
      const accepted = async () => {
        const info = (await checker.sendCommand(['INFO', 'stats'])).toString()
        return Number(/total_connections_received:(\d+)/.exec(info)?.[1])
      }
      const before = await connections()
      const acceptedBefore = await accepted()
      holding = true

      const left = await unheard(async () => {
        await app.register(parley, {
          adapter: redisAdapter({
            client,
            log: { warn: (_details, message) => void warnings.push(message) },
          }),
        })
        await until(() => held.length > 0, 5000, "the subscriber's connect to start")
        await app.close()
        // The connect goes on now, after the close.
        for (const answer of held.splice(0)) answer()
        await untilAnswered(
          async () => (await accepted()) > acceptedBefore,
          5000,
          'Redis to take the connection made after the close',
        )
        await untilAnswered(
          async () => (await connections()) === before,
          3000,
          'the connection made after the close to be closed',
        )
      })
      expect(left).toEqual([])
      // Nothing was subscribed on it, or it was undone.
      const subscribers = await checker.sendCommand([
        'PUBSUB',
        'NUMSUB',
        'parley:broadcast',
        'parley:request',
      ])
      expect(subscribers).toEqual(['parley:broadcast', 0, 'parley:request', 0])
      expect(warnings).toEqual([])
    } finally {
      holding = false
      for (const answer of held.splice(0)) answer()
      await releaseAll([() => app.close(), () => client.destroy(), () => checker.destroy()])
    }
  })
})
