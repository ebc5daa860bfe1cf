// Own broadcasts a session being handed over waited for (see src/awaited.ts) must not outlive
// its handover: one that comes back once no socket is positioned settles those behind it, so
// that the next handover's broadcasts that never ran reach its session as promptly as the
// first's did, in order, each once.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until } from '../../server/test/helpers.js'
import {
  argOf,
  type FakeNode,
  fakeClusterSuite,
  HeldInOrder,
  message,
  snapshotOf,
  to,
} from './handoff-support.js'
import { isBroadcast } from './published.js'

/** Session `sid`, socket `id` in room 'r', handed off on `node`: what it gets from then on. */
async function handedOff(node: FakeNode, id: string, sid: string): Promise<string[]> {
  const tail: string[] = []
  const handed = node.sockets.add(id, sid)
  node.adapter.addAll(id, [id, 'r'])
  await node.adapter.sessionOpened(sid)
  handed.handedOff = (text) => tail.push(text)
  expect(await node.adapter.handOff(snapshotOf(sid, id, ['r']), 60_000)).toBe(true)
  return tail
}

/** The first argument of each event in `tail`. */
const argsOf = (tail: string[]) => tail.map(argOf)

describe.skipIf(skipRedisSuites())('own broadcasts awaited by a handover that finished', () => {
  const suite = fakeClusterSuite()

  it("do not hold back the next handover's broadcasts that never run", async () => {
    const [a, b] = await suite.cluster({ requestTimeout: 300 }).start(2)
    // A socket of a's in the room, not handed over: it reads what b broadcasts in a's order.
    const watcher = a!.sockets.add('w')
    a!.adapter.addAll('w', ['w', 'r'])
    await handedOff(a!, 's1', 'sid-first')

    // Redis stalls from `one` on: `one` sent and left unanswered is given up, Redis may still
    // run it. `two`, while Redis is silent, is never sent: it waits behind `one`. What a sent
    // after `one` waits behind it on the connection, unrun, as on any one connection.
    const stalled = new HeldInOrder(a!.redis, isBroadcast, () => true)
    a!.hold = stalled.hold
    a!.adapter.broadcast(message('news', ['one']), to(['r']))
    await until(() => a!.adapter.stats.lostBroadcasts === 1, 3000, '`one` given up')
    a!.adapter.broadcast(message('news', ['two']), to(['r']))
    expect(a!.adapter.stats.lostBroadcasts).toBe(2)

    // The first handover ends unclaimed, sealed with no settle first: those awaited stay. The
    // seal waits for Redis, the socket no longer positioned.
    const sealed = a!.adapter.sealHandOff('sid-first', [])
    await until(() => a!.adapter.handingOver === 0, 3000, 'no socket positioned')

    // Redis answers again and runs `one` now, late, then what came after it, in order: `one`
    // comes back to a with no socket positioned, then b's mark.
    await stalled.runAll()
    await sealed
    b!.adapter.broadcast(message('news', ['mark']), to(['r']))
    await until(() => watcher.got.includes('mark'), 3000, "b's mark read on a")

    // The second handover: its broadcasts that never run (refused) reach it at once, in order.
    const second = await handedOff(a!, 's2', 'sid-second')
    a!.hold = (args) => (isBroadcast(args) ? Promise.reject(new Error('refused')) : undefined)
    a!.adapter.broadcast(message('news', ['three']), to(['r']))
    a!.adapter.broadcast(message('news', ['four']), to(['r']))
    await until(() => a!.adapter.stats.lostBroadcasts === 4, 3000, 'three and four refused')
    await until(() => second.length === 2, 3000, `the refused ones at the second session (got ${second})`)
    expect(argsOf(second)).toEqual(['three', 'four'])
    a!.hold = undefined
  })
})
