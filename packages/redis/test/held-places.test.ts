// What a session is sent while its handoff waits for Redis is held, and goes in the first append
// after the snapshot's write. The places written with the snapshot must not cover it: a tail
// read between the write and that append would hold neither the texts nor a reason to deliver
// them again, and a claimer joined before its marker came back would drop them for good.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import {
  HeldInOrder,
  handoffNodes,
  handoffScenes,
  message,
  reachesLive,
  sealWaitsByHand,
  snapshotOf,
  takeOverOn,
  to,
  won,
} from './handoff-support.js'

const scene = handoffScenes()

/** The wire text of a 'news' event whose argument is `arg`, as the tail holds it. */
const newsText = (arg: string) => message('news', [arg]).prepared().text(0, 0)

describe.skipIf(skipRedisSuites())(
  'the places a handoff that waited for Redis writes with its snapshot',
  () => {
    it.each([
      { what: 'the first append', before: [] },
      {
        // Two texts of 600 KiB: each goes in an append of its own (a batch carries 1 MiB at most).
        what: 'the append of the last held, in a batch after others held',
        before: ['big1', 'big2'].map((arg) => newsText(arg.padEnd(600 * 1024, '.'))),
      },
    ])(
      'leave what was held to the claimer, which delivers it when its tail was read before $what',
      async ({ before }) => {
        const { proxy, cluster } = await scene()
        const waits = sealWaitsByHand()
        let release: (() => void) | undefined
        let append: HeldInOrder | undefined
        try {
          const [a, b, c] = await handoffNodes(cluster, { subscriberVia: proxy })
          const sid = 'sid-held'
          const handed = a.sockets.add('s1', sid)
          a.adapter.addAll('s1', ['s1', 'r'])
          await a.adapter.sessionOpened(sid)
          const sent: string[] = []
          handed.handedOff = (text) => {
            sent.push(text)
            a.adapter.appendHandOff(sid, text)
          }

          // b's subscriber stops reading. a's connection says it is not ready: the handoff waits.
          release = proxy.holdDownstream()
          a.down = true
          const stored = a.adapter.handOff(snapshotOf(sid, 's1', ['r']), 60_000)
          for (const text of before) handed.handedOff(text)
          // c1 reaches the session meanwhile: held for the tail, c's place at a is 1.
          c.adapter.broadcast(message('news', ['c1']), to(['r']))
          await until(() => sent.length === before.length + 1, 5000, 'c1 held at a')
          // Redis takes a's commands again: the snapshot is written, the append of c1 held back,
          // and every command a sends after it, as on one connection (its seal among them).
          append = new HeldInOrder(
            a.redis,
            (args) => args.some((arg) => arg.includes('"c1"')),
            () => true,
          )
          a.hold = append.hold
          a.down = false
          expect(await within(stored, 5000, 'the handoff')).toBe(true)
          await until(
            () => a.commands.some((args) => args.some((arg) => arg.includes('"c1"'))),
            5000,
            'c1 sent',
          )

          // b claims, and reads the tail before the append of c1 lands (the wait for the seal,
          // which goes behind that append, runs out): what went before it alone.
          const claim = won(await b.adapter.claimSession(sid))
          const { taken, done } = takeOverOn(b, claim, sid)
          await until(() => waits.began === 1, 5000, 'the marker published')
          waits.runOut()
          const tail = await within(done, 5000, 'the takeover')
          expect(tail.tail.length).toBe(before.length === 0 ? 0 : 1)
          expect(tail.complete).toBe(false)

          // b's subscriber reads c1 after the join: the tail does not hold it, and the socket takes it.
          release()
          release = undefined
          await reachesLive(c, 'c2', taken)
          expect(taken.got).toEqual(['c1', 'c2'])
        } finally {
          release?.()
          await append?.runAll().catch(() => {})
          waits.stop()
        }
      },
      30_000,
    )
  },
)
