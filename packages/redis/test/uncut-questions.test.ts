// A socket joined before its claim marker came back holds what reaches it until its tail is read
// (see src/uncut-sockets.ts). A broadcast with acks that reaches it meanwhile must wait behind
// what it holds, as a plain broadcast does, so that the session gets both in the order Redis
// ran them; and a question the old node asked in the tail, read by the claimer after the join, is
// not asked again (the old node's places say it had it, as for a broadcast). The sender counts
// the socket once.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { UncutSockets } from '../src/uncut-sockets.js'
import { argOf, handoffScenes, message, to, untilTailHolds } from './handoff-support.js'
import { askRoom, readBackWatchers, uncutScene, watcherOn } from './uncut-scene.js'

const scene = handoffScenes()

describe('an own broadcast with acks that will not come back, for a socket joined without a cut', () => {
  it('is waited for no more once it is settled', () => {
    const uncut = new UncutSockets(() => {})
    uncut.joined('s')
    // Left out of own question 1 at its emit, the tail not read yet.
    const leftOut: string[] = []
    expect(uncut.leftOut(leftOut)('s')).toBe(false)
    uncut.owe(leftOut, 1)
    uncut.read('s', undefined, () => undefined)
    // Its tail read, the socket still waits for question 1, and is left out of the next emit.
    expect(uncut.leftOut([])('s')).toBe(false)
    // Refused, question 1 never comes back; the socket, asked at once, waits for it no more.
    uncut.settled(1)
    expect(uncut.leftOut([])('s')).toBe(true)
    expect(uncut.empty).toBe(true)
  })
})

describe.skipIf(skipRedisSuites())('a broadcast with acks to a socket joined without a cut', () => {
  it('reaches it after the broadcasts it holds while its tail is read', () =>
    uncutScene(scene, { sid: 'sid-question' }, async ({ b, c, release, joinReadHeld }) => {
      // b's subscriber reads nothing; the marker reaches a, which seals the tail.
      // The wait runs out: b joins the socket, and its read of the tail is held back.
      const { taken, done, tailRead } = await joinReadHeld()
      // After the marker, c1 then a question from c: b's to deliver, in that order.
      const watcher = watcherOn(b)
      c.adapter.broadcast(message('news', ['c1']), to(['r']))
      const outcome = askRoom(c, 'q1')
      release()
      await until(() => watcher.got.includes('q1'), 5000, 'the question read at b')
      // Held, and b's count with it: the tail may hold the question (see the tests below).
      expect(taken.got).toEqual([])
      expect(outcome.count).toBeUndefined()

      await tailRead.runAll()
      await within(done, 5000, 'the takeover')
      await until(() => outcome.replies.length === 2, 5000, 'both replies')
      expect(outcome.count).toBe(2)
      expect(taken.got).toEqual(['c1', 'q1'])
      expect(outcome.replies).toEqual([
        { ok: true, value: null },
        { ok: true, value: null },
      ])
    }))

  it('is not asked again when the tail asked it, read after the join', () =>
    uncutScene(
      scene,
      { sid: 'sid-asked-in-tail' },
      async ({ cluster, a, b, c, waits, release, takeOver }) => {
        // b's subscriber reads nothing: c's question reaches a (into the tail), and waits for b.
        const first = askRoom(c, 'q1')
        await untilTailHolds(cluster, a, 1, "c's question in a's tail")
        const { taken, done } = await takeOver()

        // The wait runs out: b joins the socket before it read c's question and its marker.
        waits.runOut()
        const tail = await within(done, 5000, 'the takeover')
        expect(tail.tail.map(argOf)).toEqual(['q1'])
        const watcher = watcherOn(b)
        release()
        await until(() => watcher.got.includes('q1'), 5000, 'the question read at b')
        expect(taken.got).toEqual([])
        // Counted once, on a (in the tail), and b's watcher.
        await until(() => first.replies.length === 2, 5000, "the first question's replies")
        expect(first.count).toBe(2)

        // After the marker: b's to ask.
        const second = askRoom(c, 'q2')
        await until(() => taken.got.includes('q2'), 5000, 'the next question at the socket')
        await until(() => second.replies.length === 2, 5000, "the second question's replies")
        expect(second.count).toBe(2)
        expect(taken.got).toEqual(['q2'])
      },
    ))

  it('is not asked again when the tail asked it, read while the tail is read', () =>
    uncutScene(scene, { sid: 'sid-asked-held' }, async ({ cluster, a, b, c, release, joinReadHeld }) => {
      c.adapter.broadcast(message('news', ['c1']), to(['r']))
      const first = askRoom(c, 'q1')
      await untilTailHolds(cluster, a, 2, "c's broadcast and question in a's tail")
      const { taken, done, tailRead } = await joinReadHeld()
      const watcher = watcherOn(b)
      // After the marker, c2 and q2: b's to deliver, once the tail is read.
      c.adapter.broadcast(message('news', ['c2']), to(['r']))
      const second = askRoom(c, 'q2')
      release()
      await until(() => watcher.got.includes('q2'), 5000, 'the questions read at b')
      expect(taken.got).toEqual([])

      await tailRead.runAll()
      const tail = await within(done, 5000, 'the takeover')
      expect(tail.tail.map(argOf)).toEqual(['c1', 'q1'])
      await until(() => second.replies.length === 2, 5000, "the second question's replies")
      expect(taken.got).toEqual(['c2', 'q2'])
      await until(() => first.replies.length === 2, 5000, "the first question's replies")
      expect(first.count).toBe(2)
      expect(second.count).toBe(2)
    }))

  it("reaches it after the claimer's own broadcasts it was left out of, its own question too", () =>
    uncutScene(
      scene,
      {
        sid: 'sid-own-question',
        before: readBackWatchers,
      },
      async ({ b, c, release, joinReadHeld }, { seenAtC, seenAtB }) => {
        const { taken, done, tailRead } = await joinReadHeld()
        // b's own, after its marker: a plain one, then a question, both left out of at emit.
        b.adapter.broadcast(message('news', ['b1']), to(['r']))
        const outcome = askRoom(b, 'q1')
        expect(taken.got).toEqual([])
        await until(() => seenAtC.got.includes('q1'), 5000, "b's question run by Redis")
        c.adapter.broadcast(message('news', ['after']), to(['after']))
        release()
        await until(() => seenAtB.got.includes('after'), 5000, "b's question read back at b")
        expect(taken.got).toEqual([])

        await tailRead.runAll()
        await within(done, 5000, 'the takeover')
        await until(() => outcome.replies.length === 2, 5000, 'the replies')
        expect(outcome.count).toBe(2)
        expect(taken.got).toEqual(['b1', 'q1'])
      },
    ))
})
