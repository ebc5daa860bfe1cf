// A stall of the node's own thread (a long synchronous task, a major GC) past `requestTimeout`
// while a command's answer is on its way: Redis answers during the stall, and the answer waits
// in the socket. Node then runs the timers that ran out meanwhile before it reads the socket;
// the bound on the command must not take it for unanswered (given up, Redis taken for
// unreachable, the next heartbeat skipped) when its answer is already there.
import { createClient } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RedisServer, skipRedisSuites, startRedis } from '../../../test/support/redis-server.js'
import { Commands } from '../src/commands.js'
import type { RedisClient } from '../src/options.js'

const TIMEOUT = 300
/** Past TIMEOUT: the bound's timer runs out during it. */
const STALL_MS = TIMEOUT + 500

describe.skipIf(skipRedisSuites())('a command answered while the thread stalled', () => {
  let redis: RedisServer | undefined
  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => {
    await redis?.stop()
  })

  it('is taken as answered, not given up, and Redis is not taken for unreachable', async () => {
    const client = createClient({ url: redis!.url })
    client.on('error', () => {})
    await client.connect()
    const commands = new Commands(client as unknown as RedisClient, TIMEOUT)
    try {
      const answer = commands.send(['PING'])
      // What a timer that ran out in the stall too (a heartbeat's, say) sees as it runs: the
      // bound's timer, due first, has run before it.
      let seen: string | undefined = 'not run'
      setTimeout(() => {
        seen = commands.unavailable()
      }, TIMEOUT + 1)
      // One turn: node-redis has written the command by then.
      await new Promise((resolve) => setImmediate(resolve))
      const until = performance.now() + STALL_MS
      while (performance.now() < until) {
        // The thread is stalled: Redis answers meanwhile, and the answer waits in the socket.
      }
      await expect(answer).resolves.toBe('PONG')
      expect(seen).toBeUndefined()
      expect(commands.unavailable()).toBeUndefined()
    } finally {
      commands.stop()
      await client.close()
    }
  })
})
