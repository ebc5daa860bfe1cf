// A claim marker never sent (Redis took no command from the claimer for its whole wait) makes no
// cut: the old node, never told of the claim, goes on putting what reaches the session into the
// tail, and a socket joined then would take some of it live as well. The claimer gives the claim
// back instead, and the client tries again: that try claims the session once Redis answers, with
// its marker, and the session gets each broadcast once, in order.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import {
  argOf,
  claimAgain,
  handedOffSession,
  handoffNodes,
  handoffScenes,
  message,
  reachesLive,
  takeOverOn,
  to,
  untilTailHolds,
  won,
} from './handoff-support.js'

const scene = handoffScenes()

describe.skipIf(skipRedisSuites())('a takeover whose claim marker could not be sent', () => {
  it('gives the claim back, and the next claim takes the session with its cut: each broadcast once', async () => {
    const { redis, cluster } = await scene()
    try {
      const [a, b, c] = await handoffNodes(cluster, { requestTimeout: 300 })

      // a hands session `sid` off; what its socket gets from then on goes to the tail.
      const sid = 'sid-marker-not-sent'
      await handedOffSession(a, sid)
      const first = won(await b.adapter.claimSession(sid))

      // Redis stalls with a command of b's unanswered: b takes no command for requestTimeout,
      // and its marker is never sent.
      redis.freeze()
      b.adapter.broadcast(message('news', ['probe']), to(['nobody']))
      await until(() => b.adapter.stats.lostBroadcasts === 1, 5000, 'b gives up on Redis')
      let joined = false
      const givenBack = await within(
        first.takeOver(() => {
          joined = true
        }),
        5000,
        'the takeover without a marker',
      )
      expect(givenBack).toMatchObject({ retry: true, tail: [] })
      expect(joined).toBe(false)
      expect(b.commands.some((args) => (args[2] ?? '').includes('"k":"claim"'))).toBe(false)
      redis.thaw()

      // a never heard of the claim: c's x1 still reaches the session's tail there.
      expect(a.sockets.claims).toEqual([])
      c.adapter.broadcast(message('news', ['x1']), to(['r']))
      await untilTailHolds(cluster, a, 1, 'x1 in the tail')

      // The client's next try: the claim was taken back first, so it wins again, and this
      // takeover has its cut.
      const second = await claimAgain(b, sid)
      const { taken, done } = takeOverOn(b, second, sid)
      const result = await within(done, 5000, 'the second takeover')
      expect(a.sockets.claims).toEqual([sid])
      await reachesLive(c, 'x2', taken)
      await reachesLive(b, 'x3', taken)
      expect([...result.tail.map(argOf), ...taken.got]).toEqual(['x1', 'x2', 'x3'])
      expect(result).toMatchObject({ complete: true, late: false })
    } finally {
      redis.thaw()
    }
  })
})
