// A claim revoked after its marker: the claimer joined the socket at the marker, and asks it a
// broadcast with acks read past it, while the old node's seal waits (an own broadcast given up
// that Redis may still run). The server then gives the old node's write up: the session stays
// there, and the old node asks it what its rooms got meanwhile; the claimer's copy is dropped,
// its question failed. Each sender must count the session once, with its real reply: the old
// node's, not the dropped copy's failure.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { fakeClusterSuite } from './handoff-support.js'
import { ask, claimedCopyPastGiven, countedOnceOnA } from './held-seal-scene.js'

describe.skipIf(skipRedisSuites())(
  'a broadcast with acks read past the marker of a claim then revoked',
  () => {
    const suite = fakeClusterSuite()

    it("counts the kept session once, with its old node's reply, whoever asks", async () => {
      // A node's count of a question kept aside waits for the end of the seal's wait (at most
      // 1 s), and the claimer's for its read of the tail after it: its sender waits for counts
      // requestTimeout, longer here, as by default. a's heartbeats wait behind its held broadcast
      // as long: three intervals outlast that, or the others would take a for gone.
      const [a, b, c] = await suite.cluster({ requestTimeout: 1500, heartbeatInterval: 1500 }).start(3)
      const sid = 'sid-revoked-count'
      // The claimer's copy, as the server's: its questions are registered, and fail when the
      // server drops it (the session kept by a).
      const { witness, claimed, taking, markerRan, copy } = await claimedCopyPastGiven(a!, b!, sid)
      await until(markerRan, 5000, 'the marker run')

      // Read past the marker on both: b's copy is asked at once, a's s1 keeps them aside.
      const fromC = ask(c!, 'from-c', ['r'])
      const fromB = ask(b!, 'from-b', ['r'])
      await until(
        () => witness.got.includes('from-c') && witness.got.includes('from-b'),
        5000,
        'the questions of c and b read on a',
      )
      await until(() => claimed.got.includes('from-c'), 5000, "c's question asked of b's copy")

      // The server gives a's write up: the session goes on on a. a's own question, back past
      // the marker, proves the awaited broadcast never ran, and the seal's wait is over.
      await within(a!.adapter.withdrawHandOff(sid), 5000, 'the write given up')
      const own = ask(a!, 'own', ['r'])
      const tail = await within(taking, 5000, 'the claim answered')
      expect(tail.kept).toBe(true)
      // The server drops b's copy: what it was asked fails.
      copy.drop(b!, sid)

      // The kept session once, with the reply it made on a; a's other socket.
      await countedOnceOnA([
        ['c', fromC],
        ['b', fromB],
        ['a', own],
      ])
    }, 30_000)
  },
)
