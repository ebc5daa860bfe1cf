// An own broadcast whose PUBLISH was given up, run by Redis later: the sockets positioned for a
// handover when it was given up took it then; one positioned after (a session taken over since)
// never had it, and takes it when it comes back.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites, startRedis } from '../../../test/support/redis-server.js'
import { until } from '../../server/test/helpers.js'
import { FakeCluster, type FakeNode, type FakeSocket, message, snapshotOf, to } from './handoff-support.js'

const TTL = 60_000

/** A session `sid` with socket `id` on `node`, in `rooms`, handed off: what it gets goes to `tail`. */
async function handedOff(node: FakeNode, sid: string, id: string, tail: string[]): Promise<FakeSocket> {
  const socket = node.sockets.add(id, sid)
  node.adapter.addAll(id, [id, 'r'])
  await node.adapter.sessionOpened(sid)
  socket.handedOff = (text) => tail.push(text)
  expect(await node.adapter.handOff(snapshotOf(sid, id, ['r']), TTL)).toBe(true)
  return socket
}

describe.skipIf(skipRedisSuites())('an own broadcast given up and run late', () => {
  it('reaches a socket taken over after it was given up, once, and the socket handed off then once', async () => {
    const redis = await startRedis()
    const cluster = new FakeCluster(redis.url, { requestTimeout: 300, heartbeatInterval: 2000 })
    try {
      const [a, b] = await cluster.start(2)
      // On b, a session being handed off: positioned when b's broadcast is given up.
      const handedTail: string[] = []
      await handedOff(b!, 'sid-x', 'x', handedTail)
      // On a, a session whose drain ended unclaimed (sealed): b claims it, and nothing more comes
      // to it from a.
      await handedOff(a!, 'sid-y', 'y', [])
      await a!.adapter.sealHandOff('sid-y', [])
      const claim = await b!.adapter.claimSession('sid-y')
      if (typeof claim !== 'object' || claim === null || 'missed' in claim) throw new Error('no claim won')

      redis.freeze()
      b!.adapter.broadcast(message('news', ['late']), to(['r']))
      await until(() => b!.adapter.stats.lostBroadcasts === 1, 5000, 'the broadcast given up')
      // The socket positioned then took it at once.
      expect(handedTail).toHaveLength(1)
      // Taken over now (sealed, and Redis, stalled, takes no marker: no cut to wait for), the
      // session's socket joins its rooms, positioned: it was in none when the broadcast was emitted.
      const taken = b!.sockets.add('y', 'sid-y')
      const done = claim.takeOver(() => b!.adapter.addAll('y', ['y', 'r']))
      await until(() => b!.adapter.handingOver === 2, 5000, 'the socket positioned')

      redis.thaw()
      await done
      await until(() => taken.got.length > 0, 5000, 'the late broadcast back')
      // Back, the late one released the socket taken over: the next reaches it when emitted,
      // and the socket handed off when it comes back, after the late one.
      expect(b!.adapter.handingOver).toBe(1)
      b!.adapter.broadcast(message('news', ['next']), to(['r']))
      await until(() => handedTail.length === 2, 5000, 'the next broadcast back')
      expect(taken.got).toEqual(['late', 'next'])
      expect(handedTail.map((text) => JSON.parse(text)[3][0])).toEqual(['late', 'next'])
    } finally {
      redis.thaw()
      await cluster.close()
      await redis.stop()
    }
  })
})
