// A node with no other node live still publishes its own broadcasts, and a session it hands off
// takes them when they come back on the channel. A broadcast with acks it emits then must reach
// that session in order with them, not at once, ahead of one still on its way back; and its
// sender still counts that socket once, with its reply.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { unheard } from '../../../test/support/unheard.js'
import { until } from '../../server/test/helpers.js'
import { type FakeNode, fakeClusterSuite, message, to } from './handoff-support.js'
import { ask } from './held-seal-scene.js'
import { handedOff } from './throwing-session.js'

describe.skipIf(skipRedisSuites())('a broadcast with acks on a node alone that hands a session off', () => {
  const suite = fakeClusterSuite()

  it('reaches the session in order with the broadcasts around it, counted once', async () => {
    const [a] = (await suite.cluster().start(1)) as [FakeNode]
    expect(a.adapter.liveNodes).toEqual([])
    const tail = await handedOff(a, 's1', 'sid-alone')
    // A socket of a's own in the room, not handed over: asked at once.
    const witness = a.sockets.add('s2')
    a.adapter.addAll('s2', ['s2', 'r'])
    const left = await unheard(async () => {
      a.adapter.broadcast(message('news', ['one']), to(['r']))
      const asked = ask(a, 'two', ['r'])
      a.adapter.broadcast(message('news', ['three']), to(['r']))
      await until(() => tail.length === 3 && asked.replies.length === 2, 3000, 'all three, and both replies')
      expect(tail).toEqual(['one', 'two', 'three'])
      expect(witness.got).toEqual(['one', 'two', 'three'])
      expect(asked.count).toBe(2)
    })
    expect(left).toEqual([])
  })
})
