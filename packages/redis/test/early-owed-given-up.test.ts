// A node gives up the PUBLISH of one of its own broadcasts (no answer in time), then takes a
// session over, joining its socket before its claim marker came back (its subscriber slow to
// read), and hands the session on before that marker, or that broadcast, came back. The socket
// never had that broadcast: the session was elsewhere when it was emitted, and it is before the
// marker, so it does not take it when it comes back. The places the node writes with the tail
// must not count it as one the snapshot holds, though the socket's own broadcasts up to the
// marker count as taken: a claimer that joins before its own marker came back, reading it after
// that marker, would drop it, and the session would never get it.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
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
import { proxiedScene } from './proxied-scene.js'

const scene = handoffScenes()

describe.skipIf(skipRedisSuites())('a session taken over early after an own broadcast was given up', () => {
  it('leaves that broadcast to the next claimer when Redis runs it after its marker', () =>
    // a gives up a PUBLISH Redis does not answer within 300 ms; a and b read through proxies.
    proxiedScene(
      scene,
      { requestTimeout: 300 },
      async ({ cluster, aProxy, proxy, a, b, c, waits, releases }) => {
        // a's link stalls from g1's PUBLISH on (what a sends after it waits behind it): a gives
        // g1 up unanswered. Then the link drops with g1 still in it, for Redis to run late or
        // never, and a takes commands again on its next connection.
        const g1 = new HeldOnDroppedLink(a, (args) => args[0] === 'PUBLISH' && (args[2] ?? '').includes('g1'))
        a.adapter.broadcast(message('news', ['g1']), to(['r']))
        await until(() => a.adapter.stats.lostBroadcasts === 1, 5000, 'g1 given up')
        await dropConnection(a)

        // c hands the session off; a, reading nothing, claims it and joins before its marker is back.
        const sid = 'sid-early-owed'
        await handedOffSession(c, sid)
        releases.push(aProxy.holdDownstream())
        const { taken: onA, done: doneA } = takeOverOn(a, won(await a.adapter.claimSession(sid)), sid)
        await until(() => c.sockets.claims.includes(sid) && waits.began === 1, 5000, "a's marker at c")
        await untilTailSealed(cluster, c)
        waits.runOut()
        expect((await within(doneA, 5000, "a's takeover")).complete).toBe(true)

        // a hands it on to b, whose subscriber reads nothing from now on either; a's drain ends.
        releases.push(proxy.holdDownstream())
        onA.handedOff = (text) => a.adapter.appendHandOff(sid, text)
        expect(
          await within(a.adapter.handOff(snapshotOf(sid, 's1', ['r']), 60_000), 5000, 'the handoff'),
        ).toBe(true)
        await a.adapter.sealHandOff(sid, [])
        const { taken: onB, done: doneB } = takeOverOn(b, won(await b.adapter.claimSession(sid)), sid)
        await until(() => waits.began === 1, 5000, "b's marker published")

        // Redis runs g1 now, the dead link's bytes delivered at last: after b's marker, b's to deliver.
        await g1.run()
        // b's wait runs out before it read its marker: it joins and reads the sealed tail.
        waits.runOut()
        const tail = await within(doneB, 5000, "b's takeover")
        expect(tail.tail).toEqual([])

        for (const release of releases.splice(0)) release()
        await reachesLive(c, 'c1', onB)
        expect([...onA.got, ...onB.got]).toEqual(['g1', 'c1'])
      },
    ))
})
