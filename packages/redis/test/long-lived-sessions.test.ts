// A session that stays connected for more than a day (a dashboard left open over a weekend) has
// no open or resume to write its owner record again: its node's heartbeats renew the record
// before it expires, so that a request another node gets for it is still sent to its owner.
// A day cannot pass in a test: the record is given the last seconds of its lifetime (EXPIRE),
// and the clock its node tells a record's age by (`renewClock`) is moved on as far.
import { createHash } from 'node:crypto'
import { type EventPacket, encodeText, PacketType } from '@parley/protocol'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { sleep, until } from '../../server/test/helpers.js'
import { rawConnect } from '../../server/test/raw-client.js'
import { RENEW_AFTER_MS, renewClock, SESSION_TTL_SECONDS } from '../src/sessions.js'
import { holding } from './handoff-support.js'
import { Nodes, redisSuite } from './nodes.js'
import { type RawRedis, rawRedis } from './raw-redis.js'

// Each test under a prefix of its own.
let tests = 0

/** The key of `sid`'s owner record, or of the route parameters beside it, under `prefix`. */
const keyOf = (prefix: string, sid: string, kind: 'session' | 'params' = 'session') =>
  `${prefix}:${kind}:${createHash('sha256').update(sid).digest('base64url')}`

/** Seconds of lifetime a record is left with: it expires within the test unless renewed. */
const LAST_SECONDS = 3

describe.skipIf(skipRedisSuites())('the owner record of a session connected for days', () => {
  let nodes: Nodes | undefined
  const suite = redisSuite(() => nodes)
  const cleanups: (() => Promise<unknown>)[] = []

  afterEach(async () => {
    vi.restoreAllMocks()
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })

  /** Moves the nodes' record clock on past the age at which a record is renewed. */
  function aDayLater(): void {
    const later = RENEW_AFTER_MS + 60 * 60 * 1000
    vi.spyOn(renewClock, 'now').mockImplementation(() => Date.now() + later)
  }

  /**
   * Waits, at most 3 s past `LAST_SECONDS`, until `key` was renewed (its TTL back past the
   * seconds it was left with) or expired; resolves with the TTL Redis reports (-2: gone).
   */
  async function renewedOrGone(redis: RawRedis, key: string): Promise<number> {
    const end = performance.now() + (LAST_SECONDS + 3) * 1000
    for (;;) {
      const ttl = await redis.ttl(key)
      if (ttl > LAST_SECONDS || ttl === -2 || performance.now() > end) return ttl
      await sleep(20)
    }
  }

  it("renews it from its node's heartbeats: a request another node gets for the session still reaches it", async () => {
    const prefix = `long-${++tests}`
    const redis = await rawRedis(suite.redis.url, cleanups)
    nodes = new Nodes()
    const [a, b] = await nodes.cluster(suite.redis.url, 2, { prefix })
    const raw = await rawConnect('polling', a!.base)
    suite.raws.push(raw)
    const got: unknown[] = []
    a!.sockets[0]!.on('hello', (value: unknown) => got.push(value))
    const key = keyOf(prefix, raw.sid)
    expect(await redis.get(key)).toBe(a!.adapter.node)

    // Nearly a day on: the record has seconds left, and it was written that long ago.
    await redis.expire(key, LAST_SECONDS)
    aDayLater()
    const ttl = await renewedOrGone(redis, key)

    // The session's next request goes to b (no sticky sessions): b finds a, and sends it on.
    const event: EventPacket = { type: PacketType.EVENT, seq: 1, name: 'hello', args: ['via b'], ackId: 0 }
    const res = await fetch(`${b!.base}/poll?v=1&sid=${raw.sid}`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: encodeText(event),
    })
    await res.text()
    expect(res.status, 'not answered as a session b does not know').toBeLessThan(300)
    await until(() => got.length === 1, 3000, 'the event on a')
    expect(got).toEqual(['via b'])
    expect(ttl, 'renewed for a whole lifetime').toBeGreaterThan(SESSION_TTL_SECONDS - 60)
    expect(await redis.get(key)).toBe(a!.adapter.node)
  })

  it('renews only records that name their node: one handed off, or owned by another node now, is left to expire', async () => {
    const prefix = `long-${++tests}`
    const redis = await rawRedis(suite.redis.url, cleanups)
    nodes = new Nodes()
    const a = await nodes.start(suite.redis.url, { prefix })
    const [mine, handed, taken] = ['sid-mine', 'sid-handed', 'sid-taken'].map((sid) => ({
      sid,
      record: keyOf(prefix, sid),
      params: keyOf(prefix, sid, 'params'),
    }))
    for (const { sid } of [mine!, handed!, taken!]) await a.adapter.sessionOpened(sid, { tenant: 'acme' })
    // The handoff script and another node's claim rewrite those two records (see handoff.ts).
    await redis.set(handed!.record, `${a.adapter.node} handoff`)
    await redis.set(taken!.record, 'another-node')
    for (const { record, params } of [mine!, handed!, taken!]) {
      await redis.expire(record, LAST_SECONDS)
      await redis.expire(params, LAST_SECONDS)
    }
    aDayLater()
    expect(await renewedOrGone(redis, mine!.record)).toBeGreaterThan(SESSION_TTL_SECONDS - 60)
    expect(await redis.ttl(mine!.params), 'its parameters with it').toBeGreaterThan(SESSION_TTL_SECONDS - 60)
    // Renewed in the same command as the others were looked at: they kept their lifetime.
    for (const { record, params } of [handed!, taken!]) {
      expect(await redis.ttl(record)).toBeLessThanOrEqual(LAST_SECONDS)
      expect(await redis.ttl(params)).toBeLessThanOrEqual(LAST_SECONDS)
    }
    expect(await redis.get(handed!.record)).toBe(`${a.adapter.node} handoff`)
    expect(await redis.get(taken!.record)).toBe('another-node')
  })

  it('renews records in bounded batches, each once, and none of a session that ended', async () => {
    const prefix = `long-${++tests}`
    const redis = await rawRedis(suite.redis.url, cleanups)
    const renewals: number[] = []
    const commands = await rawRedis(suite.redis.url, cleanups)
    const client = holding(commands, (args) => {
      if (args[0] === 'EVAL' && args[1]?.includes("'EXPIRE'") === true) renewals.push(Number(args[2]) / 2)
      return undefined
    })
    nodes = new Nodes()
    const a = await nodes.start(suite.redis.url, { prefix, client })
    const sids = Array.from({ length: 1200 }, (_, i) => `sid-${i}`)
    // A few hundred at a time: no more than `MAX_UNANSWERED_COMMANDS` may wait for Redis at once.
    for (let i = 0; i < sids.length; i += 200) {
      await Promise.all(sids.slice(i, i + 200).map((sid) => a.adapter.sessionOpened(sid)))
    }
    expect(await redis.exists(sids.map((sid) => keyOf(prefix, sid)))).toBe(1200)
    a.adapter.sessionClosed('sid-0')
    const ended = keyOf(prefix, 'sid-0')
    const last = keyOf(prefix, 'sid-1199')
    for (let tries = 0; (await redis.exists(ended)) === 1; tries++) {
      if (tries > 250) throw new Error('the ended session kept its record')
      await sleep(20)
    }
    await redis.expire(last, LAST_SECONDS)
    aDayLater()
    expect(await renewedOrGone(redis, last)).toBeGreaterThan(SESSION_TTL_SECONDS - 60)
    // Every live session's record once, 500 at most in a command; none more once they are renewed.
    expect(renewals).toEqual([500, 500, 199])
    await sleep(1000)
    expect(renewals).toEqual([500, 500, 199])
    expect(await redis.exists(ended), 'the ended session left no record').toBe(0)
  })
})
