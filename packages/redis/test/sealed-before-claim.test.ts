// A drain that ended unclaimed sealed the tail with what its socket had: broadcasts it read on
// the channel before the seal, the claimer's own included. The claimer's subscriber may read
// those only after the claim was answered (its connection is not the one the claim went on):
// joined at once, the socket would get them a second time. Each must reach the session once,
// in order: through the tail, or live after the join.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites, startRedis } from '../../../test/support/redis-server.js'
import { startTcpProxy } from '../../../test/support/tcp-proxy.js'
import { until, within } from '../../server/test/helpers.js'
import { argOf, FakeCluster, message, snapshotOf, to, won } from './handoff-support.js'

describe.skipIf(skipRedisSuites())('a takeover of a tail sealed before the claim', () => {
  it.each([
    ['its own broadcast', 'b'],
    ["a third node's broadcast", 'c'],
  ] as const)('gives the session %s from before the seal once, through the tail', async (_what, sender) => {
    const redis = await startRedis()
    // b's subscriber reaches Redis through a proxy that can hold what Redis sends it.
    const proxy = await startTcpProxy(redis.port)
    const cluster = new FakeCluster(redis.url)
    let release: (() => void) | undefined
    try {
      const a = await cluster.node()
      const b = await cluster.node(redis.url, { subscriber: `redis://127.0.0.1:${new URL(proxy.url).port}` })
      const c = await cluster.node()
      await until(() => [a, b, c].every((node) => node.adapter.liveNodes.length === 2), 5000, 'live')

      // a hands session `sid` off; what its socket gets from then on goes to the tail.
      const sid = 'sid-sealed'
      const tail: string[] = []
      const handed = a.sockets.add('s1', sid)
      a.adapter.addAll('s1', ['s1', 'r'])
      await a.adapter.sessionOpened(sid)
      handed.handedOff = (text) => {
        tail.push(text)
        a.adapter.appendHandOff(sid, text)
      }
      expect(await a.adapter.handOff(snapshotOf(sid, 's1', ['r']), 60_000)).toBe(true)

      // b's subscriber stops reading; x1 reaches a's socket (into the tail), not b yet.
      release = proxy.holdDownstream()
      const from = sender === 'b' ? b : c
      from.adapter.broadcast(message('news', ['x1']), to(['r']))
      await until(() => tail.length === 1, 5000, 'x1 at the handed-off socket')
      // a's drain ends unclaimed: it seals the tail behind x1.
      await a.adapter.sealHandOff(sid, [])

      // b claims the sealed tail and takes the session over; x1 comes back to it after that.
      const claim = won(await b.adapter.claimSession(sid))
      const taken = b.sockets.add('s1', sid)
      const done = claim.takeOver(() => b.adapter.addAll('s1', ['s1', 'r']))
      release()
      release = undefined
      const result = await within(done, 5000, 'the takeover')
      expect(result.tail.map(argOf)).toEqual(['x1'])

      // Later ones reach the socket live; the first after x1 came back to b.
      await until(() => b.adapter.handingOver === 0, 5000, 'the socket released')
      from.adapter.broadcast(message('news', ['x2']), to(['r']))
      await until(() => taken.got.includes('x2'), 5000, 'x2 at the socket')
      // One more round trip for anything late to show.
      c.adapter.broadcast(message('news', ['x3']), to(['r']))
      await until(() => taken.got.includes('x3'), 5000, 'x3 at the socket')

      // What the session got: the tail, then what reached the socket, each once and in order.
      expect([...result.tail.map(argOf), ...taken.got]).toEqual(['x1', 'x2', 'x3'])
    } finally {
      release?.()
      await cluster.close()
      await proxy.close()
      await redis.stop()
    }
  })
})
