// A node's own broadcast with acks asks a socket being handed over when the request comes back
// (see src/own-acks.ts), and counts its own sockets then. One that never comes back must not
// leave that count, and so the broadcast's total, waiting: refused, the socket is asked at once,
// as for a broadcast; lost by Redis, it is settled when a later own message comes back. One
// given up unanswered may still run, after a claim marker too: it asks the socket only then.
import type { BroadcastReply } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until } from '../../server/test/helpers.js'
import {
  type FakeCluster,
  type FakeNode,
  fakeClusterSuite,
  HeldInOrder,
  message,
  snapshotOf,
  to,
} from './handoff-support.js'

/** Nodes a and b, live to each other, with session `sid` handed off by a (its socket in room `r`). */
async function handedOff(cluster: FakeCluster, sid: string) {
  const [a, b] = await cluster.start(2)
  const handed = a!.sockets.add('s1', sid)
  a!.adapter.addAll('s1', ['s1', 'r'])
  await a!.adapter.sessionOpened(sid)
  const tail: string[] = []
  handed.handedOff = (text) => tail.push(text)
  expect(await a!.adapter.handOff(snapshotOf(sid, 's1', ['r']), 60_000)).toBe(true)
  expect(a!.adapter.handingOver).toBe(1)
  return { a: a!, b: b!, tail }
}

/** Broadcasts with acks from `node` to room `r`: its total and replies, as they come. */
function askRoom(node: FakeNode, timeout: number) {
  const outcome: { total: number | undefined; replies: BroadcastReply[] } = { total: undefined, replies: [] }
  node.adapter.broadcastWithAck(
    message('ask', ['q']),
    to(['r']),
    timeout,
    (count) => {
      outcome.total = count
    },
    (reply) => outcome.replies.push(reply),
  )
  return outcome
}

describe.skipIf(skipRedisSuites())('an own broadcast with acks that does not come back', () => {
  const suite = fakeClusterSuite()

  it('asks the socket being handed over at once when its PUBLISH cannot go', async () => {
    const { a, tail } = await handedOff(suite.cluster(), 'sid-refused')
    a.down = true
    const outcome = askRoom(a, Number.POSITIVE_INFINITY)
    a.down = false
    // Asked (into its tail, as the session is handed off) and counted, with no wait.
    expect(outcome.total).toBe(1)
    expect(outcome.replies).toEqual([{ ok: true, value: null }])
    expect(tail).toHaveLength(1)
  })

  it('asks the socket being handed over only when Redis runs it, its PUBLISH given up', async () => {
    const { a, tail } = await handedOff(suite.cluster({ requestTimeout: 300 }), 'sid-given-up')
    // Redis holds the request unanswered, and every command a sends after it, as one connection
    // does: the probe sent when the request is given up runs after it, never proves it lost
    // first. (That probe can go out: the give-up's timer may run when the clock the bound on
    // unanswered commands reads says a millisecond less than requestTimeout passed.)
    const held = new HeldInOrder(
      a.redis,
      (args) => args[0] === 'PUBLISH' && args[2]?.includes('"k":"ack"') === true,
      () => true,
    )
    a.hold = held.hold
    const outcome = askRoom(a, 10_000)
    await until(() => a.adapter.stats.lostBroadcasts === 1, 3000, 'the request given up')
    // Not asked yet: run after a claim marker, it would be the claimer's to ask.
    expect(tail).toHaveLength(0)
    expect(outcome.total).toBeUndefined()
    await held.runAll()
    // Run late, before any marker: asked here, into its tail, once; and counted then.
    await until(() => outcome.total !== undefined, 3000, "the broadcast's total")
    expect(outcome.total).toBe(1)
    expect(outcome.replies).toEqual([{ ok: true, value: null }])
    expect(tail).toHaveLength(1)
  })

  it('settles its count once a later own broadcast comes back, when Redis lost it', async () => {
    // b never counts (it never got the request): not waited for past requestTimeout.
    const { a, tail } = await handedOff(suite.cluster({ requestTimeout: 300 }), 'sid-lost')
    a.lose = (args) => args[0] === 'PUBLISH' && args[2]?.includes('"k":"ack"') === true
    const outcome = askRoom(a, Number.POSITIVE_INFINITY)
    a.lose = undefined
    expect(outcome.total).toBeUndefined()
    // Own messages come back in order: once this one does, the request is known lost.
    a.adapter.broadcast(message('news', ['later']), to(['elsewhere']))
    await until(() => outcome.total !== undefined, 3000, "the broadcast's total")
    // The socket missed it, as it misses a broadcast lost that way: counted as none.
    expect(outcome.total).toBe(0)
    expect(tail).toHaveLength(0)
  })
})
