// A claim whose tail is read without the old node's seal: the claimer's count of a question
// asked of its copy waits for the confirm, up to four requestTimeouts. A question the claimer
// sends itself with a shorter timeout must not wait that long: at its timeout its sender hears
// the counts it has (the claimer's other sockets, which replied), the copy left out.
import type { BroadcastReply } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { fakeClusterSuite, message, repliesAs, sealWaitsByHand, to } from './handoff-support.js'
import { claimedCopyPastGiven } from './held-seal-scene.js'

describe.skipIf(skipRedisSuites())('a short question sent by a claimer awaiting its confirm', () => {
  const suite = fakeClusterSuite()

  it('gives its sender the counts it has at its timeout', async () => {
    // As in unsealed-kept-count.test.ts: the claimer's count waits for its confirm (6 s here).
    const [a, b] = await suite.cluster({ requestTimeout: 1500, heartbeatInterval: 1500 }).start(3)
    const waits = sealWaitsByHand()
    try {
      const sid = 'sid-unconfirmed-timeout'
      const { taking, markerRan } = await claimedCopyPastGiven(a!, b!, sid)
      await until(() => markerRan() && waits.began === 1, 5000, 'the marker run')
      // b's wait for the seal runs out: it reads the tail as it is, unsealed.
      waits.runOut()
      const tail = await within(taking, 5000, 'the tail read')
      expect(tail.complete).toBe(false)

      // A socket of b's own in the room, which replies at once.
      repliesAs(b!.sockets.add('s3'), 'b:s3')
      b!.adapter.addAll('s3', ['s3', 'r'])
      let count: number | undefined
      const replies: BroadcastReply[] = []
      b!.adapter.broadcastWithAck(
        message('asked', ['short']),
        to(['r']),
        300,
        (total) => {
          count = total
        },
        (reply) => replies.push(reply),
      )
      // Its copy is left out. a's count, held behind its seal, is given before b's timeout runs
      // out (the question carries what is left of it): a's socket is counted and its reply taken.
      // On a machine slow enough that a's count still comes late, a is counted as none and its
      // reply dropped: either way, the count is given by the timeout and says how many replies
      // the sender takes, no more, no fewer.
      await until(() => count !== undefined, 3000, 'the count at the timeout')
      await new Promise((resolve) => setTimeout(resolve, 500))
      const taken = replies.map((reply) => (reply.ok ? reply.value : reply.error.code)).sort()
      expect(taken).toEqual(count === 2 ? ['a:s2', 'b:s3'] : ['b:s3'])
      expect(count === 2 || count === 1).toBe(true)
    } finally {
      waits.stop()
    }
  })
})
