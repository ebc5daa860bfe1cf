// A node gives up the PUBLISH of one of its own broadcasts (no answer in time), then takes a
// session over: the session was elsewhere when that broadcast was emitted, so should Redis run
// it late, the socket takes it when it comes back (see cut.ts). The node hands the session on
// before that, and seals its tail, at the next claim's marker or at the end of its drain. Its
// places must not count that broadcast as one the tail holds: a claimer that joins before its
// marker came back, reading it after the marker, would drop it though the session never had it.
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
  reachesLive,
  snapshotOf,
  takeOverOn,
  to,
  untilTailSealed,
  won,
} from './handoff-support.js'

const scene = handoffScenes()

describe.skipIf(skipRedisSuites())(
  'a sealed tail of a session taken over after an own broadcast was given up',
  () => {
    it.each([
      ['at the marker', false],
      ['at the end of its drain, before the claim', true],
    ])(
      'leaves that broadcast to the claimer when Redis runs it after the marker: sealed %s',
      async (_, drained) => {
        const { proxy, cluster } = await scene()
        // The waits for a seal run out by hand, not after SEAL_WAIT_MS.
        const waits: (() => void)[] = []
        const spy = vi.spyOn(sealWaits, 'start').mockImplementation((wake) => {
          waits.push(wake)
          return () => {}
        })
        let release: (() => void) | undefined
        try {
          // a gives up a PUBLISH Redis does not answer within 300 ms; b reads through the proxy.
          const a = await cluster.node(undefined, { requestTimeout: 300 })
          const b = await cluster.node(undefined, {
            subscriber: `redis://127.0.0.1:${new URL(proxy.url).port}`,
          })
          const c = await cluster.node()
          await until(() => [a, b, c].every((node) => node.adapter.liveNodes.length === 2), 5000, 'live')

          // a's link stalls from g1's PUBLISH on (what a sends after it waits behind it): a gives
          // g1 up unanswered. Then the link drops with g1 still in it, for Redis to run late or
          // never, and a takes commands again on its next connection.
          const g1 = new HeldOnDroppedLink(
            a,
            (args) => args[0] === 'PUBLISH' && (args[2] ?? '').includes('g1'),
          )
          a.adapter.broadcast(message('news', ['g1']), to(['r']))
          await until(() => a.adapter.stats.lostBroadcasts === 1, 5000, 'g1 given up')
          await dropConnection(a)

          // c hands the session off; a takes it over, its socket positioned until g1 comes back.
          const sid = 'sid-owed-given-up'
          await handedOffSession(c, sid)
          const { taken: onA, done: doneA } = takeOverOn(a, won(await a.adapter.claimSession(sid)), sid)
          expect((await within(doneA, 5000, "a's takeover")).complete).toBe(true)
          expect(a.adapter.handingOver).toBe(1)
          // Its wait ended with the seal.
          waits.splice(0)

          // a hands it on to b, whose subscriber reads nothing from now on; a seals its tail at the
          // end of its drain, or at b's marker.
          release = proxy.holdDownstream()
          onA.handedOff = (text) => a.adapter.appendHandOff(sid, text)
          expect(
            await within(a.adapter.handOff(snapshotOf(sid, 's1', ['r']), 60_000), 5000, 'the handoff'),
          ).toBe(true)
          if (drained) await a.adapter.sealHandOff(sid, [])
          const { taken: onB, done: doneB } = takeOverOn(b, won(await b.adapter.claimSession(sid)), sid)
          await untilTailSealed(cluster, a)
          await until(() => waits.length === 1, 5000, "b's marker published")

          // Redis runs g1 now, the dead link's bytes delivered at last: after b's marker, b's to
          // deliver.
          await g1.run()
          // b's wait runs out before it read its marker: it joins and reads the sealed tail.
          for (const wake of waits.splice(0)) wake()
          const tail = await within(doneB, 5000, "b's takeover")
          expect(tail.tail).toEqual([])

          release()
          release = undefined
          await reachesLive(c, 'c1', onB)
          expect([...onA.got, ...onB.got]).toEqual(['g1', 'c1'])
        } finally {
          release?.()
          spy.mockRestore()
        }
      },
      35_000,
    )
  },
)
