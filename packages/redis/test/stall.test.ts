// A Redis that stays connected but answers nothing (stopped, blocked, cut off without a reset):
// broadcasts and session records are given up rather than piled up, owner lookups and closing
// are bounded.
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { type RedisServer, skipRedisSuites, startRedis } from '../../../test/support/redis-server.js'
import { until } from '../../server/test/helpers.js'
import { type RawClient, rawConnect } from '../../server/test/raw-client.js'
import { Nodes, type TestNode } from './nodes.js'

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
  const raws: RawClient[] = []

  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => {
    await redis?.stop()
  })
  afterEach(async () => {
    redis.thaw()
    for (const raw of raws.splice(0)) raw.close()
    await nodes.closeAll()
  })

  /** Broadcasts from `node` until one is given up: Redis has left a command unanswered for requestTimeout. */
  async function stalled(node: TestNode): Promise<void> {
    const lost = node.adapter.stats.lostBroadcasts
    await until(
      () => {
        node.app.parley.emit('probe', 0)
        return node.adapter.stats.lostBroadcasts > lost
      },
      5000,
      'a broadcast given up',
    )
  }

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

  it('writes no session owner records while Redis does not answer, and writes them once it does', async () => {
    nodes = new Nodes()
    const [a, b] = await nodes.cluster(redis.url, 2, { requestTimeout: 300 })
    const sent = vi.spyOn(a!.redis, 'sendCommand')
    const recordWrites = () =>
      sent.mock.calls.filter(([args]) => args.some((arg) => String(arg).startsWith('parley:session:'))).length
    redis.freeze()
    await stalled(a!)
    // A session opens meanwhile, and the adapter's own record of another settles rather than
    // waits for Redis.
    const during = await rawConnect('polling', a!.base)
    raws.push(during)
    expect(await by(a!.adapter.sessionOpened('a-sid-opened-during-the-stall'), 3000)).toBeUndefined()
    const written = recordWrites()
    sent.mockRestore()
    expect(written).toBe(0)
    expect(a!.warnings.some((w) => w.includes('could not reach the other nodes'))).toBe(true)

    redis.thaw()
    // Caught up once Redis answers: the session is found from the other node.
    let owner: unknown
    const deadline = performance.now() + 5000
    while (performance.now() < deadline) {
      owner = await b!.adapter.sessionOwner(during.sid).catch(() => 'unreachable')
      if (typeof owner === 'object') break
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    expect(owner).toMatchObject({ node: a!.adapter.node })
  })
})
