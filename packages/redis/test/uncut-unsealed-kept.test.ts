// A claim whose socket joined before its marker came back, its tail read without the old node's
// seal, then found kept by its confirm: the old node gave its write up meanwhile. A question the
// claimer held for that socket until the read (see src/uncut-sockets.ts) is asked of it then,
// but must not be counted: the old node asks the session, and counts it, and the server drops
// the claimer's copy, whose reply fails.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import {
  HeldInOrder,
  handedOffSession,
  handoffScenes,
  registeredCopy,
  repliesAs,
  takeOverOn,
  won,
} from './handoff-support.js'
import { proxiedScene } from './proxied-scene.js'
import { allAnswered, askRoom, isTailRead, watcherOn } from './uncut-scene.js'

const scene = handoffScenes()

describe.skipIf(skipRedisSuites())('a question held for a socket joined without a cut, then kept', () => {
  it("is counted once, on the old node, when the claim's confirm finds the session kept", () =>
    proxiedScene(scene, {}, async ({ aProxy, proxy, a, b, c, waits, releases }) => {
      const sid = 'sid-uncut-unsealed-kept'
      await handedOffSession(a, sid)
      const kept = a.sockets.get('s1')
      if (!kept) throw new Error('s1 is not on a')
      const claim = won(await within(b.adapter.claimSession(sid), 5000, 'the claim'))
      // Neither a nor b reads the channel: a never seals, b's marker does not come back.
      releases.push(aProxy.holdDownstream())
      const releaseB = proxy.holdDownstream()
      releases.push(releaseB)
      // b's read of the tail is held back, its later commands behind it.
      const tailRead = new HeldInOrder(b.redis, isTailRead, () => true)
      tailRead.sendAll()
      b.hold = tailRead.hold
      const watcher = watcherOn(b)
      repliesAs(watcher, 'b:w')
      const { taken, done } = takeOverOn(b, claim, sid)
      // The server's copy: its questions are registered, and fail when the server drops it.
      const copy = registeredCopy()
      copy.register(taken)
      await until(() => waits.began === 1, 5000, "b's marker sent")
      // The wait for the seal runs out: b joins the socket without a cut and reads the tail.
      waits.runOut()
      await until(() => b.commands.some(isTailRead), 5000, 'the tail read sent')

      // Read on b after the join: held for s1 until its tail is read.
      const asked = askRoom(c, 'q1')
      releaseB()
      await until(() => watcher.got.includes('q1'), 5000, 'the question read on b')
      await tailRead.runAll()
      const tail = await within(done, 5000, 'the takeover')
      expect(tail.complete).toBe(false)
      expect(tail.kept).toBeUndefined()

      // a gives its write up now: the session goes on on a, which reads the question, and asks it.
      await within(a.adapter.withdrawHandOff(sid), 5000, 'the write given up')
      kept.handedOff = undefined
      repliesAs(kept, 'a:s1')
      for (const release of releases.splice(0)) release()
      expect(await within(claim.confirm!(), 5000, 'the confirm')).toBe('kept')
      // The server drops b's copy: what it was asked fails.
      copy.drop(b, sid)

      await allAnswered(asked)
      const values = asked.replies.map((reply) => (reply.ok ? reply.value : reply.error.code))
      expect({ count: asked.count, values: values.sort() }).toEqual({ count: 2, values: ['a:s1', 'b:w'] })
    }))
})
