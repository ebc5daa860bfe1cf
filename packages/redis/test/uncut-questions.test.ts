// A socket joined before its claim marker came back holds what reaches it until its tail is read
// (see src/uncut-sockets.ts). A broadcast with acks that reaches it meanwhile must wait behind
// what it holds, as a plain broadcast does, so that the session gets both in the order Redis
// ran them; the node that read it counts the socket at once, and its answer once.
import type { BroadcastReply } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import {
  type FakeNode,
  handedOffSession,
  handoffNodes,
  handoffScenes,
  holdBack,
  message,
  sealWaitsByHand,
  takeOverOn,
  to,
  untilTailSealed,
  won,
} from './handoff-support.js'

const scene = handoffScenes()

/** The claimer's read of the tail (see FINISH in handoff.ts): its two keys, for a takeover. */
const isTailRead = (args: string[]) =>
  args[0] === 'EVAL' && args[4]?.endsWith(':tail') === true && args[5] === '1'

/** Asks room `r` from `node`: its total and replies, as they come. */
function askRoom(node: FakeNode, what: string) {
  const outcome: { total: number | undefined; replies: BroadcastReply[] } = { total: undefined, replies: [] }
  node.adapter.broadcastWithAck(
    message('ask', [what]),
    to(['r']),
    10_000,
    (count) => {
      outcome.total = count
    },
    (reply) => outcome.replies.push(reply),
  )
  return outcome
}

describe.skipIf(skipRedisSuites())('a broadcast with acks to a socket joined without a cut', () => {
  it('reaches it after the broadcasts it holds while its tail is read', async () => {
    const { proxy, cluster } = await scene()
    const waits = sealWaitsByHand()
    let release: (() => void) | undefined
    try {
      const [a, b, c] = await handoffNodes(cluster, { subscriberVia: proxy })
      const sid = 'sid-question'
      await handedOffSession(a, sid)
      const claim = won(await b.adapter.claimSession(sid))

      // b's subscriber stops reading; the marker reaches a, which seals the tail.
      release = proxy.holdDownstream()
      const tailRead = holdBack(b, isTailRead)
      const { taken, done } = takeOverOn(b, claim, sid)
      await until(() => a.sockets.claims.includes(sid) && waits.began === 1, 5000, 'the marker at a')
      await untilTailSealed(cluster, a)

      // The wait runs out: b joins the socket, and its read of the tail is held back.
      waits.runOut()
      await until(() => b.commands.some(isTailRead), 5000, 'the tail read sent')
      // After the marker, c1 then a question from c: b's to deliver, in that order.
      const watcher = b.sockets.add('w')
      b.adapter.addAll('w', ['w', 'r'])
      c.adapter.broadcast(message('news', ['c1']), to(['r']))
      const outcome = askRoom(c, 'q1')
      release()
      release = undefined
      await until(() => watcher.got.includes('q1'), 5000, 'the question read at b')
      // Counted at once, the socket that holds included; asked once its tail is read.
      await until(() => outcome.total !== undefined, 5000, "the question's total")
      expect(outcome.total).toBe(2)
      expect(taken.got).toEqual([])

      await tailRead.run()
      await within(done, 5000, 'the takeover')
      await until(() => outcome.replies.length === 2, 5000, 'both replies')
      expect(taken.got).toEqual(['c1', 'q1'])
      expect(outcome.replies).toEqual([
        { ok: true, value: null },
        { ok: true, value: null },
      ])
    } finally {
      release?.()
      waits.stop()
    }
  })

  it("reaches it after the claimer's own broadcasts it was left out of, its own question too", async () => {
    const { proxy, cluster } = await scene()
    const waits = sealWaitsByHand()
    let release: (() => void) | undefined
    try {
      const [a, b] = await handoffNodes(cluster, { subscriberVia: proxy })
      const sid = 'sid-own-question'
      await handedOffSession(a, sid)
      const claim = won(await b.adapter.claimSession(sid))

      release = proxy.holdDownstream()
      const tailRead = holdBack(b, isTailRead)
      const { taken, done } = takeOverOn(b, claim, sid)
      await until(() => a.sockets.claims.includes(sid) && waits.began === 1, 5000, 'the marker at a')
      await untilTailSealed(cluster, a)

      waits.runOut()
      await until(() => b.commands.some(isTailRead), 5000, 'the tail read sent')
      // b's own, after its marker: a plain one, then a question, both left out of at emit.
      b.adapter.broadcast(message('news', ['b1']), to(['r']))
      const outcome = askRoom(b, 'q1')
      expect(taken.got).toEqual([])
      release()
      release = undefined
      await until(() => outcome.total !== undefined, 5000, "the question's total")
      expect(outcome.total).toBe(1)
      expect(taken.got).toEqual([])

      await tailRead.run()
      await within(done, 5000, 'the takeover')
      await until(() => outcome.replies.length === 1, 5000, 'the reply')
      expect(taken.got).toEqual(['b1', 'q1'])
    } finally {
      release?.()
      waits.stop()
    }
  })
})
