// A socket taken over waits, positioned, for its node's own broadcasts still on their way (see
// cut.ts). One whose PUBLISH is given up unanswered reaches it at once: from then on the socket
// owes nothing to that broadcast, whether Redis runs it late or never. It is released as soon as
// nothing else of its node's is on its way, rather than kept waiting for a later broadcast of
// its node (or a note) to come back, and takes the next one when it is emitted.
import { describe, expect, it, vi } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { sealWaits } from '../src/takeover.js'
import {
  dropConnection,
  HeldOnDroppedLink,
  handedOffSession,
  handoffScenes,
  message,
  takeOverOn,
  to,
  won,
} from './handoff-support.js'

const isNews = (args: string[], arg: string) =>
  args[0] === 'PUBLISH' && (args[2] ?? '').includes(`\\"news\\",[\\"${arg}\\"]`)

const scene = handoffScenes()

describe.skipIf(skipRedisSuites())('an own broadcast given up while a socket taken over waits', () => {
  it('releases the socket that took it as soon as nothing else is on its way', async () => {
    // b's subscriber reaches Redis through a proxy that can hold what Redis sends it.
    const { redis, proxy, cluster } = await scene()
    // b's wait for its marker runs out by hand, once its own broadcast is on its way.
    const wakes: (() => void)[] = []
    const spy = vi.spyOn(sealWaits, 'start').mockImplementation((wake) => {
      wakes.push(wake)
      return () => {}
    })
    let release: (() => void) | undefined
    try {
      const a = await cluster.node()
      const b = await cluster.node(redis.url, {
        requestTimeout: 300,
        subscriber: `redis://127.0.0.1:${new URL(proxy.url).port}`,
      })
      await until(() => a.adapter.liveNodes.length === 1 && b.adapter.liveNodes.length === 1, 5000, 'live')

      // a's drain ended with session `sid` unclaimed: its tail is sealed.
      const sid = 'sid-given-up'
      await handedOffSession(a, sid, { sealed: true })

      // b's subscriber stops reading: y1, b's own, is on its way back when b joins the socket.
      release = proxy.holdDownstream()
      b.adapter.broadcast(message('news', ['y1']), to(['r']))
      const claim = won(await b.adapter.claimSession(sid))
      const { taken, done } = takeOverOn(b, claim, sid)
      await until(() => wakes.length === 1, 5000, 'the wait for the marker')
      wakes[0]!()
      await within(done, 5000, 'the takeover')
      expect(b.adapter.handingOver).toBe(1)

      // x1, emitted after the join, is held on its way to Redis and given up: the socket takes
      // it. b's link stalls from x1 on: what b sends after it waits behind it.
      new HeldOnDroppedLink(b, (args) => isNews(args, 'x1'))
      b.adapter.broadcast(message('news', ['x1']), to(['r']))
      await until(() => b.adapter.stats.lostBroadcasts === 1, 5000, 'x1 given up')
      expect(taken.got).toEqual(['x1'])

      // y1 comes back (before the cut: not the socket's), and nothing else is on its way.
      release()
      release = undefined
      await until(() => b.adapter.handingOver === 0, 3000, 'the socket released')

      // x1 never runs: the link drops with it, and b takes commands again on its next
      // connection. The next reaches the socket as it is emitted, once.
      await dropConnection(b)
      b.adapter.broadcast(message('news', ['x2']), to(['r']))
      expect(taken.got).toEqual(['x1', 'x2'])
      a.adapter.broadcast(message('news', ['x3']), to(['r']))
      await until(() => taken.got.includes('x3'), 5000, 'x3 at the socket')
      expect(taken.got).toEqual(['x1', 'x2', 'x3'])
    } finally {
      release?.()
      spy.mockRestore()
    }
  }, 35_000)
})
