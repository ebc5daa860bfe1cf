// A claim revoked while its claimer joined the socket before its marker came back (the wait for
// the seal ran out): the claimer holds a question read after the join until its tail is read
// (see src/uncut-sockets.ts). That read says the old node kept the session, which asked the
// socket there and counted it: the claimer must not ask its copy then, nor count it.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { HeldInOrder, handoffScenes, isSeal, takeOverOn } from './handoff-support.js'
import { allAnswered, askRoom, isTailRead, uncutScene, watcherOn } from './uncut-scene.js'

const scene = handoffScenes()

describe.skipIf(skipRedisSuites())(
  'a question for a socket joined without a cut whose claim is revoked',
  () => {
    it('is asked and counted on the old node alone, which kept the session', () =>
      uncutScene(scene, { sid: 'sid-uncut-kept' }, async ({ a, b, c, waits, claim, release }) => {
        const sid = 'sid-uncut-kept'
        // a gives its write up before it reads b's marker: the claim is revoked, and the session
        // goes on on a, in its rooms.
        await within(a.adapter.withdrawHandOff(sid), 5000, 'the write given up')
        const kept = a.sockets.get('s1')
        if (!kept) throw new Error('s1 is not on a')
        kept.handedOff = undefined
        // b's read of the tail is held back; b's subscriber reads nothing, so its marker does not
        // come back, and the wait for the seal, run out, joins the socket without a cut.
        const tailRead = new HeldInOrder(b.redis, isTailRead, () => true)
        tailRead.sendAll()
        b.hold = tailRead.hold
        const { taken, done } = takeOverOn(b, claim, sid)
        await until(
          () => waits.began === 1 && a.commands.some((args) => isSeal(args)),
          5000,
          'the marker at a',
        )
        waits.runOut()
        await until(() => b.commands.some(isTailRead), 5000, 'the tail read sent')

        // Read after the join on b, which holds it for s1 until its tail is read (b's watcher w,
        // in the room too, tells when b read it); on a, s1 is asked at once.
        const watcher = watcherOn(b)
        const asked = askRoom(c, 'q1')
        await until(() => kept.got.includes('q1'), 5000, 'the question asked on a')
        release()
        await until(() => watcher.got.includes('q1'), 5000, 'the question read on b')
        await tailRead.runAll()
        const tail = await within(done, 5000, 'the takeover')
        expect(tail.kept).toBe(true)
        // The server drops b's copy.
        b.sockets.sockets.delete('s1')
        b.sockets.sessions.delete(sid)
        b.adapter.delAll('s1')

        await allAnswered(asked)
        // s1 on a, and b's watcher.
        expect(asked.count).toBe(2)
        expect(taken.got).not.toContain('q1')
      }))
  },
)
