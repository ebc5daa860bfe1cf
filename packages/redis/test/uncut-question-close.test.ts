// A node closes while a question of its own, back from Redis, waits for the tail read of a
// socket joined without a cut (see src/held-questions.ts): the close gives its count then, with
// the sockets asked by then, as its timeout would, and the bound of that wait ends with the
// close rather than at the question's timeout, after it.
import type { BroadcastReply } from '@parley/server'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { handoffScenes, message, repliesAs, to } from './handoff-support.js'
import { readBackWatchers, uncutScene } from './uncut-scene.js'

const scene = handoffScenes()

/** The question's timeout: told apart from every other timer the nodes start. */
const QUESTION_TIMEOUT = 43_210

describe.skipIf(skipRedisSuites())(
  "a node's own question held for a socket joined without a cut, at its close",
  () => {
    afterEach(() => {
      vi.restoreAllMocks()
    })

    it('gives its count at the close, its bound ended with it', () =>
      uncutScene(
        scene,
        {
          sid: 'sid-uncut-close',
          before: readBackWatchers,
        },
        async ({ b, c, release, joinReadHeld }, { seenAtC, seenAtB }) => {
          const { taken, tailRead } = await joinReadHeld()
          repliesAs(taken, 'b:s1')
          const started = vi.spyOn(globalThis, 'setTimeout')
          const cleared = vi.spyOn(globalThis, 'clearTimeout')
          /** How many timers of the question's timeout started from now on are still running. */
          const running = () =>
            started.mock.calls.filter(([, ms], at) => {
              const handle = started.mock.results[at]?.value as unknown
              return ms === QUESTION_TIMEOUT && !cleared.mock.calls.some(([h]) => h === handle)
            }).length
          const asked: { count: number | undefined; replies: BroadcastReply[] } = {
            count: undefined,
            replies: [],
          }
          // Left out of it at emit, the socket taken over is asked when it comes back, held
          // behind the tail read.
          b.adapter.broadcastWithAck(
            message('ask', ['q1']),
            to(['r']),
            QUESTION_TIMEOUT,
            (count) => {
              asked.count = count
            },
            (reply) => asked.replies.push(reply),
          )
          await until(() => seenAtC.got.includes('q1'), 5000, "b's question run by Redis")
          c.adapter.broadcast(message('news', ['after']), to(['after']))
          release()
          await until(() => seenAtB.got.includes('after'), 5000, "b's question read back at b")
          expect(taken.got).toEqual([])
          expect(asked.count).toBeUndefined()
          // b's own bound, and the one of the count held for the socket taken over.
          expect(running()).toBe(2)

          try {
            await within(b.adapter.close(), 10_000, "b's close")
            expect(running()).toBe(0)
            // c's watcher counted; the socket taken over, not asked yet, left out.
            await until(
              () => asked.count !== undefined && asked.replies.length >= asked.count,
              3000,
              'the count',
            )
            expect(asked.count).toBe(1)
            // Its tail read after the close, the socket taken over is still asked, in order, and
            // its reply is not passed on: the sender hears no more replies than it counted.
            await tailRead.runAll()
            await until(() => taken.got.includes('q1'), 5000, 'the question at the socket taken over')
            expect(taken.got).toEqual(['q1'])
            await new Promise((resolve) => setImmediate(resolve))
            expect(asked.replies).toEqual([{ ok: true, value: null }])
          } finally {
            tailRead.dropAll(null)
          }
        },
      ))
  },
)
