// ready() at startup while Redis cannot be reached: it settles within requestTimeout with a
// coded error that names the Redis address, and the adapter keeps trying meanwhile.
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { connect } from '@parley/client'
import { type RedisAdapter, RedisErrorCode, RedisUnreachableError, redisAdapter } from '@parley/redis'
import { createClient } from 'redis'
import { afterEach, describe, expect, it } from 'vitest'
import { holdPort } from '../../../test/support/ports.js'
import { skipRedisSuites, startRedis } from '../../../test/support/redis-server.js'
import { type Started, startServer, until } from '../../server/test/helpers.js'
import { inbox, Nodes } from './nodes.js'

const BOUND = 400

/** A full garbage collection, between turns of the event loop (a WeakRef holds until its turn ends). */
async function collectGarbage(): Promise<void> {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => setImmediate(resolve))
    gc()
  }
}

describe.skipIf(skipRedisSuites())('ready() while Redis cannot be reached', () => {
  const cleanups: (() => Promise<void> | void)[] = []
  const rejections: unknown[] = []
  const onRejection = (reason: unknown) => rejections.push(reason)

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
    process.off('unhandledRejection', onRejection)
  })

  /**
   * A node whose client points at `url` and is left connecting (as `redis.connect()` not
   * awaited): nothing waits for Redis before the adapter is made.
   */
  async function nodeOn(
    url: string,
  ): Promise<Started & { adapter: RedisAdapter; warnings: string[]; errors: string[] }> {
    process.on('unhandledRejection', onRejection)
    // Retries every 50 ms: node-redis's own pace doubles up to 2 s, and the later ready() of a
    // test, bounded by requestTimeout, would find it waiting out that pace rather than Redis.
    const redis = createClient({ url, socket: { reconnectStrategy: () => 50 } })
    redis.on('error', () => {})
    void redis.connect().catch(() => undefined)
    cleanups.push(() => redis.destroy())
    const warnings: string[] = []
    // The messages of the warnings' `err`, as a log line shows them.
    const errors: string[] = []
    const started = await startServer({
      handoff: false,
      adapter: redisAdapter({
        client: redis,
        requestTimeout: BOUND,
        heartbeatInterval: 100,
        log: {
          warn: (details, message) => {
            warnings.push(message)
            const { err } = details as { err?: unknown }
            if (err instanceof Error) errors.push(err.message)
          },
        },
      }),
    })
    cleanups.push(() => started.app.close())
    return { ...started, adapter: started.app.parley.adapter as RedisAdapter, warnings, errors }
  }

  it('rejects within requestTimeout with PARLEY_REDIS_UNREACHABLE, naming the address without its credentials', async () => {
    // Held here, where nothing answers: no other test file's Redis can come up on it meanwhile.
    const { port, release } = await holdPort()
    cleanups.push(release)
    const node = await nodeOn(`redis://someone:s3cret@127.0.0.1:${port}`)
    // The error's cause is the subscriber's last connection error: asked before its first try
    // was reset (a loaded machine can take longer than the bound to get there), ready() would
    // give up with no cause yet.
    await until(
      () => node.warnings.some((w) => w.includes('the subscriber connection to')),
      5000,
      "the subscriber's first failed connection",
    )
    const asked = performance.now()
    // Given up after its bound, not at once and not never; 'late' leaves a machine many times
    // slower than this one all the time it needs.
    let timer: NodeJS.Timeout | undefined
    const err = await Promise.race([
      node.adapter.ready().then(
        () => undefined,
        (error: unknown) => error,
      ),
      new Promise<'late'>((resolve) => {
        timer = setTimeout(() => resolve('late'), 10_000)
      }),
    ]).finally(() => clearTimeout(timer))
    const waited = performance.now() - asked
    expect(err).toBeInstanceOf(RedisUnreachableError)
    expect(err).toMatchObject({ code: RedisErrorCode.UNREACHABLE })
    const message = (err as Error).message
    // The address where the message says what is not reachable, never the word "Redis" alone.
    const says = `@parley/redis: Redis at redis://127.0.0.1:${port} is not reachable (`
    expect(message.slice(0, says.length)).toBe(says)
    expect(message).not.toMatch(/someone|s3cret/)
    expect((err as Error).cause).toBeInstanceOf(Error)
    expect(waited).toBeGreaterThanOrEqual(BOUND - 20)
    // Asked again, it waits its bound again; closed, it says so. Nothing is left unhandled.
    await expect(node.adapter.ready()).rejects.toMatchObject({ code: RedisErrorCode.UNREACHABLE })
    const pending = node.adapter.ready()
    await node.adapter.close()
    await expect(pending).rejects.toThrow(
      `@parley/redis: Redis at redis://127.0.0.1:${port} is not reachable (the adapter was closed before it was ready`,
    )
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(rejections).toEqual([])
  })

  it('rejects at once, every later call too, once the subscriber failed for good', async () => {
    const redis = await startRedis()
    cleanups.push(() => redis.stop())
    const admin = createClient({ url: redis.url })
    await admin.connect()
    // A user allowed everything but SUBSCRIBE: the subscriber's SUBSCRIBE is refused.
    await admin.sendCommand(['ACL', 'SETUSER', 'nosub', 'on', '>pw', '~*', '&*', '+@all', '-subscribe'])
    admin.destroy()
    const node = await nodeOn(redis.url.replace('redis://', 'redis://nosub:pw@'))
    await until(
      () => node.warnings.some((w) => w.includes('could not subscribe at')),
      5000,
      'the failed start said',
    )
    // Said by the start that failed, not by a bound that ran out ('not ready within'): the
    // adapter tries no more.
    for (let i = 0; i < 2; i++) {
      const err = await node.adapter.ready().then(
        () => undefined,
        (error: unknown) => error,
      )
      expect(err).toBeInstanceOf(RedisUnreachableError)
      expect((err as Error).message).toMatch(
        /^@parley\/redis: Redis at redis:\/\/127\.0\.0\.1:\d+ is not reachable \(could not subscribe; other nodes are out of reach until the adapter is made again\)$/,
      )
    }
  })

  it('keeps no call that gave up waiting, however long the start goes on', async () => {
    const { port, release } = await holdPort()
    cleanups.push(release)
    const node = await nodeOn(`redis://127.0.0.1:${port}`)
    // Calls that gave up (past their bound), while the subscriber never connects: none of them,
    // nor what waited on it, stays reachable from the start still under way.
    const refs: WeakRef<Promise<void>>[] = []
    // Asked and awaited in a function of its own: nothing of this test's frame holds a call.
    const gaveUp = async () => {
      const given: Promise<unknown>[] = []
      for (let i = 0; i < 20; i++) {
        const ready = node.adapter.ready()
        refs.push(new WeakRef(ready))
        given.push(ready.catch((err: unknown) => err))
      }
      return (await Promise.all(given)).every((err) => err instanceof RedisUnreachableError)
    }
    expect(await gaveUp()).toBe(true)
    await collectGarbage()
    expect(refs.filter((ref) => ref.deref() !== undefined)).toHaveLength(0)
  })

  it('names the Redis address, never its credentials, in its warnings of an unreachable Redis', async () => {
    const { port, release } = await holdPort()
    cleanups.push(release)
    const node = await nodeOn(`redis://someone:s3cret@127.0.0.1:${port}`)
    const address = `redis://127.0.0.1:${port}`
    await until(
      () =>
        node.warnings.some((w) =>
          w.startsWith(`@parley/redis: the subscriber connection to ${address} failed`),
        ),
      5000,
      'the subscriber warning',
    )
    // A broadcast lost for the other nodes says where it could not go.
    node.app.parley.emit('news', 'lost')
    await until(
      () => node.warnings.some((w) => w.includes(`Redis at ${address} is not reachable (not connected)`)),
      3000,
      'the lost broadcast warning',
    )
    // A command not sent (the `err` of the warnings of those given up) names it too.
    const refused = await node.adapter.sessionOwner('some-sid').then(
      () => undefined,
      (err: unknown) => err,
    )
    expect(refused).toBeInstanceOf(RedisUnreachableError)
    expect((refused as Error).message).toBe(
      `@parley/redis: Redis at ${address} is not reachable (not connected)`,
    )
    expect([...node.warnings, ...node.errors].join('\n')).not.toMatch(/someone|s3cret/)
    await node.adapter.close()
  })

  it('says that Redis refused the login, not that it is down, when the password is missing or wrong', async () => {
    const redis = await startRedis()
    cleanups.push(() => redis.stop())
    const admin = createClient({ url: redis.url })
    await admin.connect()
    cleanups.push(() => admin.destroy())
    await admin.configSet('requirepass', 'right-one')

    for (const [url, said] of [
      [redis.url, 'NOAUTH'],
      [`redis://:wrong-one@127.0.0.1:${redis.port}`, 'WRONGPASS'],
    ] as const) {
      const node = await nodeOn(url)
      await until(() => node.errors.some((e) => e.startsWith(said)), 5000, `the subscriber's ${said}`)
      const err = await node.adapter.ready().then(
        () => undefined,
        (error: unknown) => error,
      )
      expect(err).toMatchObject({ code: RedisErrorCode.UNREACHABLE })
      const message = (err as Error).message
      expect(message).toContain(
        `@parley/redis: Redis at ${redis.url} is not reachable (not ready within ${BOUND} ms: no connection yet: Redis answered, and refused this client's login (${said}`,
      )
      expect(message).toContain("check the user name and password of the client's URL")
      expect(message).toMatch(/it keeps trying, and works once Redis accepts the login\)$/)
      expect(message).not.toContain('wrong-one')
    }
    expect(rejections).toEqual([])
  })

  it('works once Redis comes up after, and a later ready() resolves', async () => {
    const redis = await startRedis()
    cleanups.push(() => redis.stop())
    await redis.stop()
    const late = await nodeOn(redis.url)
    await expect(late.adapter.ready()).rejects.toMatchObject({ code: RedisErrorCode.UNREACHABLE })

    await redis.restart()
    // Another node sees it: its first heartbeat went through, so it is ready by then. (Asked at
    // once, ready()'s bound, requestTimeout, would race the client's reconnection, the
    // subscription and that heartbeat, which a loaded machine can take longer than 400 ms for.)
    const nodes = new Nodes()
    cleanups.push(() => nodes.closeAll())
    const other = await nodes.start(redis.url)
    await until(() => other.adapter.liveNodes.includes(late.adapter.node), 5000, 'the late node seen live')
    await late.adapter.ready()

    // A broadcast from the other node reaches its sockets.
    const client = connect(late.base, { transports: ['websocket'], reconnection: false })
    cleanups.push(() => void client.disconnect())
    await until(() => client.connected, 3000, 'client')
    const got = inbox(client)
    other.app.parley.emit('news', 'hello')
    await until(() => got.length === 1, 3000, 'a broadcast from the other node')
    expect(got).toEqual(['hello'])
    expect(rejections).toEqual([])
  })
})
