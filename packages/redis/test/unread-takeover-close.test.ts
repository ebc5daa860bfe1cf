// A node closes while a question of its own waits for the read of a takeover's tail: its count of
// the sockets it asked at emit (the socket taken over, held until that read, and another beside
// it) is given by the close, before the close settles the question, not dropped by it.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import {
  fakeClusterSuite,
  HeldInOrder,
  handedOffSession,
  repliesAs,
  takeOverOn,
  untilTailSealed,
  won,
} from './handoff-support.js'
import { askRoom, isTailRead, watcherOn } from './uncut-scene.js'

describe.skipIf(skipRedisSuites())("a node's question asked of a takeover not read yet, at its close", () => {
  const suite = fakeClusterSuite()

  it('counts every socket it asked, with their replies', async () => {
    const cluster = suite.cluster()
    const [a, b] = await cluster.start(3)
    const sid = 'sid-unread-close'
    await handedOffSession(a!, sid)
    const watcher = watcherOn(b!)
    repliesAs(watcher, 'b:w')
    const claim = won(await within(b!.adapter.claimSession(sid), 5000, 'the claim'))
    // b's read of the tail is held back: until it is answered, s1's count waits.
    const tailRead = new HeldInOrder(b!.redis, isTailRead, () => false)
    b!.hold = tailRead.hold
    try {
      const { taken } = takeOverOn(b!, claim, sid)
      repliesAs(taken, 'b:s1')
      await untilTailSealed(cluster, a!)
      await until(() => b!.commands.some(isTailRead), 5000, 'the tail read sent, s1 joined')

      const asked = askRoom(b!, 'q')
      // Both replied at once; the count waits for s1's read.
      expect(asked.count).toBeUndefined()
      await within(cluster.stop(b!), 5000, "b's close")

      await until(
        () => asked.count !== undefined && asked.replies.length >= asked.count,
        3000,
        'the count and the replies',
      )
      const values = asked.replies.map((reply) => (reply.ok ? reply.value : reply.error.code))
      expect({ count: asked.count, values: values.sort() }).toEqual({ count: 2, values: ['b:s1', 'b:w'] })
    } finally {
      tailRead.dropAll(null)
    }
  })
})
