// A node closes while a socket its takeover joined without a cut still holds what reaches it
// (its tail not read yet, see src/uncut-sockets.ts). What this node emits after the close (every
// broadcast stays here then, none crosses Redis) reaches that socket behind what it holds, in
// the order this node emitted it, a question too: asked in order once its tail is read, and left
// out of the question's count, given at once, as a question it held at the close is.
import type { BroadcastReply } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { handoffScenes, message, repliesAs, to } from './handoff-support.js'
import { readBackWatchers, uncutScene } from './uncut-scene.js'

const scene = handoffScenes()

describe.skipIf(skipRedisSuites())('a socket joined without a cut, still holding at its node’s close', () => {
  it('takes what its node emits after the close behind what it holds, once each, in order', () =>
    uncutScene(
      scene,
      { sid: 'sid-uncut-after-close', before: readBackWatchers },
      async ({ b, c, release, joinReadHeld }, { seenAtB }) => {
        const { taken, tailRead } = await joinReadHeld()
        repliesAs(taken, 'b:s1')
        try {
          // c's broadcast reaches b while the socket holds: held for it.
          c.adapter.broadcast(message('news', ['n1']), to(['r']))
          c.adapter.broadcast(message('news', ['after']), to(['after']))
          release()
          await until(() => seenAtB.got.includes('after'), 5000, "c's broadcasts read at b")
          expect(taken.got).toEqual([])

          await within(b.adapter.close(), 10_000, "b's close")
          // Emitted by b after its close: a broadcast, then a question.
          b.adapter.broadcast(message('news', ['n2']), to(['r']))
          const asked: { count: number | undefined; replies: BroadcastReply[] } = {
            count: undefined,
            replies: [],
          }
          b.adapter.broadcastWithAck(
            message('ask', ['q3']),
            to(['r']),
            10_000,
            (count) => {
              asked.count = count
            },
            (reply) => asked.replies.push(reply),
          )
          // Not asked yet, the socket is left out of the count, given at once: it holds nothing
          // else of b's here, and the replies the sender hears are those it counted.
          await until(() => asked.count !== undefined, 3000, "the question's count")
          expect(asked.count).toBe(0)
          expect(taken.got).toEqual([])

          await tailRead.runAll()
          await until(() => taken.got.includes('q3'), 5000, 'the question at the socket taken over')
          await new Promise((resolve) => setImmediate(resolve))
          expect(taken.got).toEqual(['n1', 'n2', 'q3'])
          expect(asked.replies).toEqual([])
        } finally {
          tailRead.dropAll(null)
        }
      },
    ))
})
