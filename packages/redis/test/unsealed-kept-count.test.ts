// A claim whose tail is read without the old node's seal (its wait ran out), then found kept by
// its confirm: the old node gave its write up meanwhile, and the session stays there. A broadcast
// with acks asked of the claimer's copy between the read and the confirm must not count it:
// the old node asks the session, and counts it, and the server drops the claimer's copy, whose
// reply fails. Each sender counts the session once, with the old node's reply.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { fakeClusterSuite, sealWaitsByHand } from './handoff-support.js'
import { ask, claimedCopyPastGiven, countedOnceOnA } from './held-seal-scene.js'

describe.skipIf(skipRedisSuites())('a broadcast with acks asked of a claim read unsealed, then kept', () => {
  const suite = fakeClusterSuite()

  it("counts the kept session once, with its old node's reply", async () => {
    // As in revoked-claim-count.test.ts: counts wait for the end of a's seal's wait, and the
    // claimer's for its confirm; a's heartbeats wait behind its held broadcast.
    const [a, b, c] = await suite.cluster({ requestTimeout: 1500, heartbeatInterval: 1500 }).start(3)
    const waits = sealWaitsByHand()
    try {
      const sid = 'sid-unsealed-kept'
      const { witness, claim, claimed, taking, markerRan, copy } = await claimedCopyPastGiven(a!, b!, sid)
      await until(() => markerRan() && waits.began === 1, 5000, 'the marker run')
      // a read the marker: its seal is held, s1 out of its rooms.
      const probe = ask(c!, 'probe', ['r'])
      await until(() => witness.got.includes('probe'), 5000, 'the probe read on a')

      // b's wait for the seal runs out: it reads the tail as it is, unsealed.
      waits.runOut()
      const tail = await within(taking, 5000, 'the tail read')
      expect(tail.complete).toBe(false)
      expect(tail.kept).toBeUndefined()

      // Between the read and the confirm: asked of b's copy, and kept aside on a.
      const fromC = ask(c!, 'from-c', ['r'])
      await until(() => witness.got.includes('from-c'), 5000, "c's question read on a")
      await until(() => claimed.got.includes('from-c'), 5000, "c's question asked of b's copy")

      // The server gives a's write up: the session goes on on a. a's own question, back past
      // the marker, proves the awaited broadcast never ran, and the seal's wait is over.
      await within(a!.adapter.withdrawHandOff(sid), 5000, 'the write given up')
      const own = ask(a!, 'own', ['r'])
      expect(await within(claim.confirm!(), 5000, 'the confirm')).toBe('kept')
      // The server drops b's copy: what it was asked fails.
      copy.drop(b!, sid)

      await countedOnceOnA([
        ['c', fromC],
        ['a', own],
      ])
      expect(probe.count).toBeDefined()
    } finally {
      waits.stop()
    }
  }, 40_000)
})
