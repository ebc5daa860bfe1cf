// The record of how a handed-off session ended, written while its node is cut off from Redis,
// reaches Redis late, once the node is back: it lives what is left of its TTL counted from the
// session's end, not its whole TTL from when Redis took it, which would outlive the end it
// describes (a node that ended the session has forgotten it by then). The record and the
// withdrawal of the session's snapshot behind it wait together in one of the node's
// MAX_KEPT_UNDOS places. Over a real Redis, the node's link to it through a proxy the test takes
// down.
import { type ClosePacket, PacketType } from '@parley/protocol'
import type { EndedSession } from '@parley/server'
import { afterEach, describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { startTcpProxy, type TcpProxy } from '../../../test/support/tcp-proxy.js'
import { sleep, until } from '../../server/test/helpers.js'
import { sidHash } from '../src/sessions.js'
import { MAX_KEPT_UNDOS } from '../src/undos.js'
import { behind, cutOff, handOff, open } from './handoff-steps.js'
import { type FakeCluster, fakeClusterSuite } from './handoff-support.js'

const close: ClosePacket = { type: PacketType.CLOSE, reason: 'server disconnect', message: 'bye' }
const ENDING: EndedSession = { close, ack: 2 }

/** How long the node stays cut off after the session ended: a good part of the record's TTL. */
const AWAY_MS = 2000

/**
 * Slack for the SET's way to Redis (loopback, on a machine that may be loaded), by which the
 * record outlives its end; well below the `AWAY_MS` and more that a record given its whole TTL
 * from when Redis took it would have left.
 */
const SLACK_MS = 1000

describe.skipIf(skipRedisSuites())(
  'the record of a handed-off session that ended while Redis was away',
  () => {
    const suite = fakeClusterSuite()
    const proxies: TcpProxy[] = []
    afterEach(async () => {
      for (const proxy of proxies.splice(0)) await proxy.close()
    })

    const endedKey = (cluster: FakeCluster, sid: string) => `${cluster.prefix}:ended:${sidHash(sid)}`

    /**
     * a hands `sid` off and is cut off from Redis; the session ends there with a record of `ttl`
     * ms, then its snapshot is withdrawn. Resolves with the moment right after the end was
     * recorded (`performance.now()`), and `back`, which lets a reach Redis again.
     */
    async function endedAway(sid: string, ttl: number) {
      const cluster = suite.cluster()
      const [b] = await cluster.start(1)
      const proxy = await startTcpProxy(suite.redis().port)
      proxies.push(proxy)
      const a = await behind(proxy, cluster, b!)
      const socket = await open(a, sid, 's1')
      expect(await handOff(a, socket, sid)).toBe(true)
      await cutOff(a, proxy)
      a.adapter.sessionEnded(sid, ENDING, ttl)
      const ended = performance.now()
      a.sockets.sessions.delete(sid)
      await a.adapter.withdrawHandOff(sid)
      const back = async () => {
        proxy.offline = false
        await until(() => a.redis.isReady, 5000, 'a reaches Redis again')
        // The withdraw goes behind the record: once it ran, the record went too.
        const snapshot = `${cluster.prefix}:handoff:${sidHash(sid)}`
        await expect.poll(() => b!.redis.exists(snapshot), { timeout: 5000 }).toBe(0)
      }
      return { cluster, b: b!, ended, back }
    }

    it('lives what is left of its TTL from the session’s end, not its whole TTL from when Redis took it', async () => {
      const sid = 'sid-ended-late'
      const ttl = 3 * AWAY_MS
      const { cluster, b, ended, back } = await endedAway(sid, ttl)
      await sleep(AWAY_MS)
      await back()
      const read = performance.now()
      const left = await b.redis.pTTL(endedKey(cluster, sid))
      // Given its whole TTL when it landed, it would have about `ttl` left; it has at most what
      // was left of it from the end (the clock of this process is the node's own).
      expect(left).toBeGreaterThan(0)
      expect(left).toBeLessThanOrEqual(ttl - (read - ended) + SLACK_MS)
      expect(await b.adapter.endedSession(sid)).toEqual(ENDING)
    })

    it('is not written once its TTL ran out while Redis was away', async () => {
      const sid = 'sid-ended-too-late'
      const { cluster, b, back } = await endedAway(sid, AWAY_MS / 2)
      await sleep(AWAY_MS)
      await back()
      expect(await b.redis.exists(endedKey(cluster, sid))).toBe(0)
      expect(await b.adapter.endedSession(sid)).toBeUndefined()
    })

    it('keeps the record and the withdrawal of each of MAX_KEPT_UNDOS sessions, one place each', async () => {
      const cluster = suite.cluster()
      const [b] = await cluster.start(1)
      const proxy = await startTcpProxy(suite.redis().port)
      proxies.push(proxy)
      const a = await behind(proxy, cluster, b!)
      const sids = Array.from({ length: MAX_KEPT_UNDOS }, (_, i) => `sid-ended-away-${i}`)
      const stored = await Promise.all(
        sids.map(async (sid, i) => handOff(a, await open(a, sid, `s${i}`), sid)),
      )
      expect(stored.every((each) => each)).toBe(true)
      await cutOff(a, proxy)
      // Each ends as the server ends one: its record kept, then its snapshot withdrawn.
      for (const sid of sids) {
        a.adapter.sessionEnded(sid, ENDING, 60_000)
        a.sockets.sessions.delete(sid)
      }
      await Promise.all(sids.map((sid) => a.adapter.withdrawHandOff(sid)))
      // Two steps for each session: with a place each, half of them were pushed out.
      expect(a.warnings.filter((line) => line.includes('gave up taking back a handoff step'))).toEqual([])
      proxy.offline = false
      await until(() => a.redis.isReady, 5000, 'a reaches Redis again')
      const count = async (kind: string) =>
        ((await b!.redis.sendCommand(['KEYS', `${cluster.prefix}:${kind}:*`])) as string[]).length
      await expect.poll(() => count('handoff'), { timeout: 10_000 }).toBe(0)
      expect(await count('ended')).toBe(MAX_KEPT_UNDOS)
    })
  },
)
