// A claimer that stops waiting for its claim marker to come back (the wait for the seal ran out
// while its subscriber was slow to read) joins the socket before the cut point has reached it.
// Its own broadcasts sent before the marker are the old node's to deliver (into the tail), and
// they come back to the claimer after that join: the session must not get them a second time.
import { describe, expect, it, vi } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { sealWaits } from '../src/takeover.js'
import {
  argOf,
  handedOffSession,
  handoffScenes,
  message,
  takeOverOn,
  to,
  untilTailHolds,
  untilTailSealed,
  won,
} from './handoff-support.js'

/** The waits for a seal, run out by hand (`runOut`) rather than after `SEAL_WAIT_MS`. */
function sealWaitsByHand() {
  const pending: (() => void)[] = []
  const spy = vi.spyOn(sealWaits, 'start').mockImplementation((wake) => {
    pending.push(wake)
    return () => {}
  })
  return {
    get began() {
      return pending.length
    },
    runOut: () => {
      for (const wake of pending.splice(0)) wake()
    },
    stop: () => spy.mockRestore(),
  }
}

const scene = handoffScenes()

describe.skipIf(skipRedisSuites())('a takeover that joins before its marker is back', () => {
  it("gives the session the claimer's own broadcasts once: those before the marker in the tail, later ones live", async () => {
    // b's subscriber reaches Redis through a proxy that can hold what Redis sends it.
    const { redis, proxy, cluster } = await scene()
    const waits = sealWaitsByHand()
    let release: (() => void) | undefined
    try {
      const a = await cluster.node()
      const b = await cluster.node(redis.url, { subscriber: `redis://127.0.0.1:${new URL(proxy.url).port}` })
      await until(() => a.adapter.liveNodes.length === 1 && b.adapter.liveNodes.length === 1, 5000, 'live')

      // a hands session `sid` off; what its socket gets from then on goes to the tail.
      const sid = 'sid-early'
      await handedOffSession(a, sid)
      const claim = won(await b.adapter.claimSession(sid))

      // b's subscriber stops reading: b's own broadcasts reach a (into the tail), not b.
      release = proxy.holdDownstream()
      b.adapter.broadcast(message('news', ['b1']), to(['r']))
      b.adapter.broadcast(message('news', ['b2']), to(['r']))
      await untilTailHolds(cluster, a, 2, "b's broadcasts in a's tail")

      // The marker reaches a, which seals the tail behind them; b hears neither it nor the seal.
      const { taken, done } = takeOverOn(b, claim, sid)
      await until(() => a.sockets.claims.includes(sid) && waits.began === 1, 5000, 'the marker at a')
      await untilTailSealed(cluster, a)

      // The wait for the seal runs out: b joins the socket and reads the tail.
      waits.runOut()
      const tail = await within(done, 5000, 'the takeover')
      expect(tail.tail.map(argOf)).toEqual(['b1', 'b2'])
      expect(tail.complete).toBe(true)

      // b3 is emitted after the join: b's, once its marker is back.
      b.adapter.broadcast(message('news', ['b3']), to(['r']))
      release()
      release = undefined
      await until(() => taken.got.includes('b3'), 5000, 'b3 at the socket')
      await until(() => b.adapter.handingOver === 0, 5000, 'the socket released')
      b.adapter.broadcast(message('news', ['b4']), to(['r']))

      // What the session got: the tail, then what reached the socket, each once and in order.
      expect([...tail.tail.map(argOf), ...taken.got]).toEqual(['b1', 'b2', 'b3', 'b4'])
    } finally {
      release?.()
      waits.stop()
    }
  })
})
