// A claim marker whose PUBLISH got no answer within requestTimeout may still run: Redis was
// stalled, not gone. Once it runs, it is the cut, and the old node seals the tail behind what it
// read before it. A claimer that joined the socket when it gave the marker up would take live
// what the tail holds too; it waits for the marker instead (within its bound, SEAL_WAIT_MS), and
// the session gets each broadcast once, in order.
import { describe, expect, it, vi } from 'vitest'
import { skipRedisSuites, startRedis } from '../../../test/support/redis-server.js'
import { startTcpProxy } from '../../../test/support/tcp-proxy.js'
import { until, within } from '../../server/test/helpers.js'
import { sealWaits } from '../src/takeover.js'
import { argOf, eventually, FakeCluster, message, snapshotOf, to, won } from './handoff-support.js'

describe.skipIf(skipRedisSuites())('a takeover whose claim marker got no answer in time', () => {
  it('waits for the marker Redis runs late: the old node seals at the cut, and each broadcast reaches the session once', async () => {
    const redis = await startRedis()
    // b's subscriber reaches Redis through a proxy that can hold what Redis sends it.
    const proxy = await startTcpProxy(redis.port)
    const cluster = new FakeCluster(redis.url)
    // The claimer's wait never runs out by itself here: what ends it is the marker and the seal.
    const spy = vi.spyOn(sealWaits, 'start').mockImplementation(() => () => {})
    let release: (() => void) | undefined
    try {
      const a = await cluster.node()
      const b = await cluster.node(redis.url, {
        requestTimeout: 300,
        subscriber: `redis://127.0.0.1:${new URL(proxy.url).port}`,
      })
      const c = await cluster.node()
      await until(() => [a, b, c].every((node) => node.adapter.liveNodes.length === 2), 5000, 'live')

      // a hands session `sid` off; what its socket gets from then on goes to the tail.
      const sid = 'sid-marker-late'
      const handed = a.sockets.add('s1', sid)
      a.adapter.addAll('s1', ['s1', 'r'])
      await a.adapter.sessionOpened(sid)
      handed.handedOff = (text) => a.adapter.appendHandOff(sid, text)
      expect(await a.adapter.handOff(snapshotOf(sid, 's1', ['r']), 60_000)).toBe(true)
      const claim = won(await b.adapter.claimSession(sid))
      const keys = async () =>
        (await a.redis.sendCommand(['KEYS', `${cluster.prefix}:handoff:*`])) as string[]

      // b's subscriber stops reading; c's x1 reaches a's socket (into the tail), not b yet.
      release = proxy.holdDownstream()
      c.adapter.broadcast(message('news', ['x1']), to(['r']))
      await eventually(
        async () => {
          const tail = (await keys()).find((key) => key.endsWith(':tail'))
          return tail !== undefined && Number(await a.redis.sendCommand(['LLEN', tail])) === 1
        },
        5000,
        'x1 in the tail',
      )

      // Redis stalls with b's marker unanswered: b gives it up, and Redis runs it once it thaws.
      redis.freeze()
      const taken = b.sockets.add('s1', sid)
      const done = claim.takeOver(() => b.adapter.addAll('s1', ['s1', 'r']))
      await until(
        () => b.commands.some((args) => (args[2] ?? '').includes('"k":"claim"')),
        5000,
        'the marker sent',
      )
      // A broadcast of b's to no socket, sent behind the marker: given up, so is the marker.
      b.adapter.broadcast(message('news', ['probe']), to(['nobody']))
      await until(() => b.adapter.stats.lostBroadcasts === 1, 5000, 'b gives up on Redis')
      redis.thaw()
      await until(() => a.sockets.claims.includes(sid), 5000, 'the marker at a')
      await eventually(
        async () => {
          const hash = (await keys()).find((key) => !key.endsWith(':tail'))
          return hash !== undefined && String(await a.redis.sendCommand(['HGET', hash, 'sealed'])) === '1'
        },
        5000,
        'the tail sealed',
      )
      release()
      release = undefined
      const result = await within(done, 5000, 'the takeover')

      // Later ones reach the socket live.
      c.adapter.broadcast(message('news', ['x2']), to(['r']))
      await until(() => taken.got.includes('x2'), 5000, 'x2 at the socket')
      b.adapter.broadcast(message('news', ['x3']), to(['r']))
      await until(() => taken.got.includes('x3'), 5000, 'x3 at the socket')

      // What the session got: the tail, then what reached the socket, each once and in order.
      expect([...result.tail.map(argOf), ...taken.got]).toEqual(['x1', 'x2', 'x3'])
      expect(result).toMatchObject({ complete: true, late: false })
    } finally {
      redis.thaw()
      release?.()
      spy.mockRestore()
      await cluster.close()
      await proxy.close()
      await redis.stop()
    }
  })
})
