// An own broadcast given up while a session is handed over, which its socket waits for (see
// src/awaited.ts), and an own broadcast with acks emitted after it: the session takes them in the
// order they were emitted, as every other socket of the node did, when the question comes back
// and proves that the broadcast never ran.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until } from '../../server/test/helpers.js'
import {
  argOf,
  dropConnection,
  type FakeNode,
  fakeClusterSuite,
  HeldInOrder,
  HeldOnDroppedLink,
  message,
  snapshotOf,
  to,
} from './handoff-support.js'

/** Node a of two, handing off session `sid` (its socket in room `r`): what reaches the tail. */
async function handingOff(a: FakeNode, sid: string): Promise<string[]> {
  const handed = a.sockets.add('s1', sid)
  a.adapter.addAll('s1', ['s1', 'r'])
  await a.adapter.sessionOpened(sid)
  const tail: string[] = []
  handed.handedOff = (text) => tail.push(text)
  expect(await a.adapter.handOff(snapshotOf(sid, 's1', ['r']), 60_000)).toBe(true)
  return tail
}

/** Asks room `r` from `node`: resolves with the total. */
function ask(node: FakeNode, arg: string): { total: number | undefined } {
  const outcome: { total: number | undefined } = { total: undefined }
  node.adapter.broadcastWithAck(
    message('ask', [arg]),
    to(['r']),
    10_000,
    (count) => {
      outcome.total = count
    },
    () => {},
  )
  return outcome
}

describe.skipIf(skipRedisSuites())('a question behind a broadcast the handed-over session waits for', () => {
  const suite = fakeClusterSuite()

  it('reaches the session after that broadcast, which never ran', async () => {
    const [a] = await suite.cluster({ requestTimeout: 300 }).start(2)
    const handed = a!.sockets.add('s1', 'sid-order')
    a!.adapter.addAll('s1', ['s1', 'r'])
    await a!.adapter.sessionOpened('sid-order')
    const tail: string[] = []
    handed.handedOff = (text) => tail.push(text)
    expect(await a!.adapter.handOff(snapshotOf('sid-order', 's1', ['r']), 60_000)).toBe(true)
    // a's link stalls from the broadcast on: nothing a sends after it runs either (the probe
    // sent when it is given up waits behind it), and the connection then drops with them all.
    new HeldOnDroppedLink(a!, (args) => args[0] === 'PUBLISH' && args[2]?.includes('first') === true)
    a!.adapter.broadcast(message('news', ['first']), to(['r']))
    await until(() => a!.adapter.stats.lostBroadcasts === 1, 3000, 'the broadcast given up')
    // Its connection made again, Redis takes commands again: the question is PUBLISHed, and
    // comes back (unless the probe, sent again, proves the broadcast never ran first).
    await dropConnection(a!)
    let total: number | undefined
    a!.adapter.broadcastWithAck(
      message('ask', ['second']),
      to(['r']),
      10_000,
      (count) => {
        total = count
      },
      () => {},
    )
    await until(() => total !== undefined, 3000, "the question's total")
    expect(tail.map(argOf)).toEqual(['first', 'second'])
  })

  it('waits behind that broadcast when Redis takes no PUBLISH, and follows it once it runs', async () => {
    const [a] = await suite.cluster({ requestTimeout: 300 }).start(2)
    const tail = await handingOff(a!, 'sid-stalled')
    // Redis holds the broadcast, unanswered: given up, then every command waits for Redis. What
    // a sends after it waits behind it, as on one connection: the probe sent when it is given up
    // (which the bound on unanswered commands can let go a millisecond early) cannot prove it
    // never ran.
    const held = new HeldInOrder(
      a!.redis,
      (args) => args[0] === 'PUBLISH' && args[2]?.includes('first') === true,
      () => true,
    )
    a!.hold = held.hold
    a!.adapter.broadcast(message('news', ['first']), to(['r']))
    await until(() => a!.adapter.stats.lostBroadcasts === 1, 3000, 'the broadcast given up')
    // Never sent, the question cannot run: it goes to the session, but not ahead of the broadcast.
    const outcome = ask(a!, 'second')
    expect(a!.adapter.stats.lostBroadcasts).toBe(2)
    expect(tail.map(argOf)).toEqual([])
    await held.runAll()
    await until(() => outcome.total !== undefined, 3000, "the question's total")
    expect(outcome.total).toBe(1)
    expect(tail.map(argOf)).toEqual(['first', 'second'])
  })
})
