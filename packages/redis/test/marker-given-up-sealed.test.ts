// A claim marker given up unanswered (Redis stalled) for a tail sealed before the claim: nothing
// more comes from the old node, so nothing is waited for, but there is no cut either. Joined
// then, the socket would take live a broadcast that the claimer's subscriber reads late and the
// sealed tail holds too. The claimer gives the claim back instead; the next claim, once Redis
// answers, takes the session at its marker, and the session gets each broadcast once, in order.
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
  won,
} from './handoff-support.js'

const scene = handoffScenes()

describe.skipIf(skipRedisSuites())('a takeover of a sealed tail whose marker got no answer in time', () => {
  it('gives the claim back, and the next claim gives the session a broadcast from before the seal once', async () => {
    // b's subscriber reaches Redis through a proxy that can hold what Redis sends it.
    const { redis, proxy, cluster } = await scene()
    let release: (() => void) | undefined
    try {
      const [a, b, c] = await handoffNodes(cluster, {
        requestTimeout: 300,
        subscriberVia: proxy,
      })

      // a hands session `sid` off; what its socket gets from then on goes to the tail.
      const sid = 'sid-sealed-given-up'
      const tail = await handedOffSession(a, sid)

      // b's subscriber stops reading; c's x1 reaches a's socket (into the tail), not b yet.
      release = proxy.holdDownstream()
      c.adapter.broadcast(message('news', ['x1']), to(['r']))
      await until(() => tail.length === 1, 5000, 'x1 at the handed-off socket')
      // a's drain ends unclaimed: it seals the tail behind x1.
      await a.adapter.sealHandOff(sid, [])
      const first = won(await b.adapter.claimSession(sid))

      // Redis stalls with b's marker unanswered: b gives it up, with nothing to wait for from a.
      redis.freeze()
      let joins = 0
      const join = () => {
        joins++
        b.adapter.addAll('s1', ['s1', 'r'])
      }
      const { taken, done: taking } = takeOverOn(b, first, sid, join)
      let resolved = false
      const done = taking.finally(() => {
        resolved = true
      })
      await until(() => joins > 0 || resolved, 5000, 'the marker given up')
      // Redis answers again, and b's subscriber reads x1.
      redis.thaw()
      release()
      release = undefined
      const firstTry = await within(done, 5000, 'the takeover')

      // Given back: the client's next try claims it once the claim was taken back, and joins at
      // its marker.
      let result = firstTry
      if (firstTry.retry) {
        result = await within((await claimAgain(b, sid)).takeOver(join), 5000, 'the takeover at its cut')
      }
      await reachesLive(c, 'x2', taken)
      await reachesLive(b, 'x3', taken)

      // What the session got: the tail, then what reached the socket, each once and in order.
      expect([...result.tail.map(argOf), ...taken.got]).toEqual(['x1', 'x2', 'x3'])
      expect(result).toMatchObject({ complete: true, late: true })
      expect(firstTry).toMatchObject({ retry: true, tail: [] })
      expect(joins).toBe(1)
    } finally {
      redis.thaw()
      release?.()
    }
  }, 25_000)
})
