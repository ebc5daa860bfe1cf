// A Fastify boot that fails after Parley registered with the Redis adapter, in each way it can
// fail (a plugin registered after Parley's throws, before Parley's onReady hook: Fastify tells
// Parley nothing of it; or an onReady hook after Parley's throws). Fastify closes nothing then,
// and an application need not close such an instance: the adapter must not be left subscribed,
// beating and listed among the live nodes, and a process that closes its own Redis client must be
// free to exit.
import { redisAdapter } from '@parley/redis'
import parley from '@parley/server'
import Fastify from 'fastify'
import { createClient } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RedisServer, skipRedisSuites, startRedis } from '../../../test/support/redis-server.js'
import { releaseAll } from '../../../test/support/release.js'
import { startChild } from '../../client/test/child-process.js'
import { BOOT_FAILS, FAILED_BOOTS } from '../../server/test/failed-boots.js'
import { sleep } from '../../server/test/helpers.js'

/** Asks until `check` answers true, at most `ms`: each answer awaited before the next asking. */
async function untilAnswered(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms
  while (!(await check())) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

describe.skipIf(skipRedisSuites())('a boot that fails after Parley registered with the Redis adapter', () => {
  let redis: RedisServer | undefined
  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => {
    await redis?.stop()
  })

  describe.each(FAILED_BOOTS)('%s', (_way, fail) => {
    it.each([
      ['awaited', true],
      ['not awaited', false],
    ])(
      'closes the adapter with Parley registered %s: no subscriber, no live record, though the app is never closed',
      async (_how, awaited) => {
        const client = createClient({ url: redis!.url })
        client.on('error', () => {})
        // Asks Redis what it holds, from a connection of its own.
        const checker = createClient({ url: redis!.url })
        checker.on('error', () => {})
        const app = Fastify()
        try {
          await Promise.all([client.connect(), checker.connect()])
          const connections = async () =>
            (await checker.sendCommand(['CLIENT', 'LIST'])).toString().trim().split('\n').length
          const nodeRecords = async () =>
            (await checker.keys('parley:node:*')).filter((key) => !key.includes(':left'))
          const before = await connections()
          const options = { adapter: redisAdapter({ client, log: { warn: () => {} } }) }
          if (awaited) await app.register(parley, options)
          else app.register(parley, options)
          await fail(app)
          const adapter = awaited ? app.parley.adapter : undefined
          // Awaited, the adapter joins first (subscribed, its record written): its close then
          // has something to undo.
          if (adapter && 'ready' in adapter) await (adapter as { ready(): Promise<void> }).ready()
          await expect(app.ready()).rejects.toThrow(BOOT_FAILS)
          await untilAnswered(
            async () => (await connections()) === before,
            5000,
            'the subscriber to be closed',
          )
          await untilAnswered(
            async () => (await nodeRecords()).length === 0,
            5000,
            'the node record to be removed',
          )
          const subscribers = await checker.sendCommand(['PUBSUB', 'NUMSUB', 'parley:broadcast'])
          expect(subscribers).toEqual(['parley:broadcast', 0])
        } finally {
          await releaseAll([() => client.destroy(), () => checker.destroy(), () => app.close()])
        }
      },
    )
  })

  it.each(['awaited', 'loading'])(
    'leaves a process free to exit once it closed its own Redis client (registration %s)',
    async (how) => {
      const child = await startChild(new URL('./failed-boot-child.ts', import.meta.url).pathname, [
        redis!.url,
        how,
      ])
      try {
        // Well past a heartbeat (2 s by default): a heartbeat's timer, or the subscriber's
        // connection, would hold it for good.
        expect(await child.exit(10_000)).toBe(0)
        expect(JSON.parse(child.out)).toMatchObject({ failed: BOOT_FAILS })
      } finally {
        child.kill()
      }
    },
  )
})
