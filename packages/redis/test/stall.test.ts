// A Redis that stays connected but answers nothing (stopped, blocked, cut off without a reset):
// broadcasts are given up and counted rather than piled up, owner lookups and closing are bounded.
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { type RedisServer, skipRedisSuites, startRedis } from '../../../test/support/redis-server.js'
import { Nodes } from './nodes.js'

/** `promise`'s value, or 'late' after `ms`. */
function by<T>(promise: Promise<T>, ms: number): Promise<T | 'late'> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), ms)
  })
  return Promise.race([promise, late]).finally(() => clearTimeout(timer))
}

describe.skipIf(skipRedisSuites())('a Redis that does not answer', () => {
  let redis: RedisServer
  let nodes: Nodes

  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => {
    await redis?.stop()
  })
  afterEach(async () => {
    redis.thaw()
    await nodes.closeAll()
  })

  it('gives up the broadcasts it leaves unanswered, counts them lost and names Redis', async () => {
    nodes = new Nodes()
    const [a] = await nodes.cluster(redis.url, 2, { requestTimeout: 300 })
    const sent = vi.spyOn(a!.redis, 'sendCommand')
    const publishes = () => sent.mock.calls.filter(([args]) => args[0] === 'PUBLISH').length
    redis.freeze()
    // One broadcast every 5 ms for 1.2 s: four times the bound.
    for (let i = 0; i < 240; i++) {
      a!.app.parley.emit('news', i)
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    sent.mockRestore()
    expect(a!.redis.isReady).toBe(true)
    // Those sent within the first 300 ms at most; the rest were never sent.
    expect(publishes()).toBeLessThan(160)
    expect(a!.adapter.stats.lostBroadcasts).toBeGreaterThanOrEqual(80)
    expect(
      a!.warnings.some((w) => w.includes('could not reach the other nodes') && w.includes('Redis')),
    ).toBe(true)
  })

  it('rejects an owner lookup with PARLEY_REDIS_UNREACHABLE rather than wait for Redis', async () => {
    nodes = new Nodes()
    const [a] = await nodes.cluster(redis.url, 2, { requestTimeout: 300 })
    redis.freeze()
    const lookup = a!.adapter.sessionOwner('a-sid-nobody-holds').then(
      () => 'answered',
      (err: unknown) => err,
    )
    const outcome = await by(lookup, 3000)
    expect(outcome).toMatchObject({ code: 'PARLEY_REDIS_UNREACHABLE' })
  })

  it('closes a node within 3 s while Redis is frozen', async () => {
    nodes = new Nodes()
    const [a] = await nodes.cluster(redis.url, 2)
    await nodes.client(a!)
    redis.freeze()
    // A heartbeat is in flight when the node closes.
    await a!.adapter.ready()
    await new Promise((resolve) => setTimeout(resolve, 400))
    const closed = await by(
      nodes.stop(a!).then(() => 'closed'),
      3000,
    )
    expect(closed).toBe('closed')
  })
})
