// A socket joined before its claim marker came back takes what was held for it while the tail
// was read, once that read answers: inside the takeover, which never rejects. A socket whose
// delivery throws loses that broadcast (logged), and the takeover goes on.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { argOf, handoffScenes, message, reachesLive, to, untilTailHolds } from './handoff-support.js'
import { uncutScene, watcherOn } from './uncut-scene.js'

const scene = handoffScenes()

describe.skipIf(skipRedisSuites())(
  'what reaches a socket joined without a cut while its tail is read',
  () => {
    it('is lost, logged, when the socket throws at its delivery, and the takeover resolves', () =>
      uncutScene(scene, { sid: 'sid-throws' }, async ({ cluster, a, b, c, release, joinReadHeld }) => {
        // b's subscriber reads nothing: c1 goes into a's tail, then the marker, and a seals.
        c.adapter.broadcast(message('news', ['c1']), to(['r']))
        await untilTailHolds(cluster, a, 1, "c1 in a's tail")
        // The wait runs out: b joins the socket, and its read of the tail is held back.
        const { taken, done, tailRead } = await joinReadHeld()
        // c2, after the marker, reaches b while the read waits: held for the socket.
        const watcher = watcherOn(b)
        c.adapter.broadcast(message('news', ['c2']), to(['r']))
        taken.deliver = () => {
          throw new Error('a socket that fails')
        }
        release()
        await until(() => watcher.got.includes('c2'), 5000, 'c2 read at b')

        // The read answers: c1 is in the tail, c2 is delivered now, and the socket throws.
        await tailRead.runAll()
        const tail = await within(done, 5000, 'the takeover')
        expect(tail.tail.map(argOf)).toEqual(['c1'])
        expect(b.warnings).toContain(
          '@parley/redis: a broadcast for a socket taken over before its claim marker came back failed at its delivery, and is lost to its session',
        )

        // The socket takes what comes next.
        Reflect.deleteProperty(taken, 'deliver')
        await reachesLive(c, 'c3', taken)
        expect(taken.got).toEqual(['c3'])
      }))
  },
)
