// A drain that ended unclaimed sealed the tail with what its socket had: broadcasts it read on
// the channel before the seal, the claimer's own included. The claimer's subscriber may read
// those only after the claim was answered (its connection is not the one the claim went on):
// joined at once, the socket would get them a second time. Each must reach the session once,
// in order: through the tail, or live after the join.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import {
  argOf,
  handedOffSession,
  handoffNodes,
  handoffScenes,
  message,
  reachesLive,
  takeOverOn,
  to,
  won,
} from './handoff-support.js'

const scene = handoffScenes()

describe.skipIf(skipRedisSuites())('a takeover of a tail sealed before the claim', () => {
  it.each([
    ['its own broadcast', 'b'],
    ["a third node's broadcast", 'c'],
  ] as const)('gives the session %s from before the seal once, through the tail', async (_what, sender) => {
    // b's subscriber reaches Redis through a proxy that can hold what Redis sends it.
    const { proxy, cluster } = await scene()
    let release: (() => void) | undefined
    try {
      const [a, b, c] = await handoffNodes(cluster, {
        subscriberVia: proxy,
      })

      // a hands session `sid` off; what its socket gets from then on goes to the tail.
      const sid = 'sid-sealed'
      const tail = await handedOffSession(a, sid)

      // b's subscriber stops reading; x1 reaches a's socket (into the tail), not b yet.
      release = proxy.holdDownstream()
      const from = sender === 'b' ? b : c
      from.adapter.broadcast(message('news', ['x1']), to(['r']))
      await until(() => tail.length === 1, 5000, 'x1 at the handed-off socket')
      // a's drain ends unclaimed: it seals the tail behind x1.
      await a.adapter.sealHandOff(sid, [])

      // b claims the sealed tail and takes the session over; x1 comes back to it after that.
      const claim = won(await b.adapter.claimSession(sid))
      const { taken, done } = takeOverOn(b, claim, sid)
      release()
      release = undefined
      const result = await within(done, 5000, 'the takeover')
      expect(result.tail.map(argOf)).toEqual(['x1'])

      // Later ones reach the socket live; the first after x1 came back to b.
      await until(() => b.adapter.handingOver === 0, 5000, 'the socket released')
      await reachesLive(from, 'x2', taken)
      // One more round trip for anything late to show.
      await reachesLive(c, 'x3', taken)

      // What the session got: the tail, then what reached the socket, each once and in order.
      expect([...result.tail.map(argOf), ...taken.got]).toEqual(['x1', 'x2', 'x3'])
    } finally {
      release?.()
    }
  })
})
