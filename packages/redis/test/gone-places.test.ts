// The places a node writes with a handed-off session's snapshot, each batch of its tail and its
// seal: rewritten for every session of a drain, so they leave out the nodes gone long since
// (see GONE_PLACE_MS), and keep every live one.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until } from '../../server/test/helpers.js'
import { GONE_PLACE_MS, placesClock } from '../src/places.js'
import { type FakeNode, fakeClusterSuite, handedOffSession, message, to } from './handoff-support.js'

describe.skipIf(skipRedisSuites())('the places written with a snapshot', () => {
  const suite = fakeClusterSuite()
  afterEach(() => vi.restoreAllMocks())

  it.each([
    { leaves: 'said goodbye', later: GONE_PLACE_MS + 1000, kept: false },
    { leaves: 'lapsed', later: GONE_PLACE_MS + 1000, kept: false },
    { leaves: 'said goodbye', later: GONE_PLACE_MS - 60_000, kept: true },
  ])(
    "of a node that $leaves, its last broadcast read $later ms before: kept $kept; a live one's kept",
    async ({ leaves, later, kept }) => {
      const cluster = suite.cluster()
      const [a, b, c] = (await cluster.start(3)) as [FakeNode, FakeNode, FakeNode]
      const watcher = a.sockets.add('w')
      a.adapter.addAll('w', ['w', 'r'])
      b.adapter.broadcast(message('news', ['b1']), to(['r']))
      c.adapter.broadcast(message('news', ['c1']), to(['r']))
      await until(() => watcher.got.length === 2, 5000, "b's and c's broadcasts read at a")

      const [bNode, cNode] = [b.adapter.node, c.adapter.node]
      // c leaves: a hears its goodbye, or c's heartbeats stop and its record lapses.
      if (leaves === 'lapsed') c.down = true
      else await cluster.stop(c)
      await until(() => a.adapter.liveNodes.length === 1, 5000, 'c gone at a')

      // Later: b, quiet all the while, is live; c is gone.
      vi.spyOn(placesClock, 'now').mockImplementation(() => performance.now() + later)
      await handedOffSession(a, 'sid-gone')
      const keys = (await a.redis.sendCommand(['KEYS', `${cluster.prefix}:handoff:*`])) as string[]
      const hash = keys.find((key) => !key.endsWith(':tail')) ?? ''
      const places = JSON.parse(String(await a.redis.sendCommand(['HGET', hash, 'places']))) as Record<
        string,
        unknown
      >
      c.down = false
      expect(places).toEqual(kept ? { [bNode]: 1, [cNode]: 1 } : { [bNode]: 1 })
    },
  )
})
