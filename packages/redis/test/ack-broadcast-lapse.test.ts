// A broadcast with acks stops waiting for the count of a node that drops out of the live set
// before giving it. A node that said goodbye closed, and its sockets with it: the total is whole
// without it. A node whose heartbeat record lapsed (a stalled process, its Redis connection back
// later than one record lifetime after an empty Redis restart) may still hold sockets that took
// the broadcast: the short total is counted in `stats.incompleteRequests` and logged with the
// node, as a count that comes too late is.
import type { NodesChange } from '@parley/redis'
import type { BroadcastReply } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { GHOST, haunt, lapse, leaveMarked, published, sayLeft } from './ghost-node.js'
import { type FakeCluster, type FakeNode, fakeClusterSuite, message, to } from './handoff-support.js'
import { rawRedisEach } from './raw-redis.js'

/** Far longer than the test: a wait for counts that ends, ends because the ghost dropped out. */
const REQUEST_TIMEOUT = 60_000

/** What `node` logged of its broadcasts with acks. */
function ackLines(node: FakeNode): FakeNode['warned'] {
  return node.warned.filter(({ message }) => message.includes('broadcast with acks'))
}

/** A second ghost (see ghost-node.ts), for a test where one is still waited for. */
const OTHER_GHOST = 'ghost-2'

/**
 * `a`, which asks, with the ghost (and `OTHER_GHOST`, if `both`) and `b` live to it; `b` holds
 * socket b0 in room `room`. `a`'s heartbeat interval is `aBeat` ms when given. Resolves once the
 * broadcast went out (no timeout of its own: only the counts end its wait), with its total to
 * come, the replies so far, and its request's id.
 */
async function askedOfGhost(cluster: FakeCluster, aBeat?: number, both = false) {
  const a = await cluster.node(undefined, {
    requestTimeout: REQUEST_TIMEOUT,
    ...(aBeat !== undefined && { heartbeatInterval: aBeat }),
  })
  const b = await cluster.node()
  b.sockets.add('b0')
  b.adapter.addAll('b0', ['b0', 'room'])
  const changes: NodesChange[] = []
  a.adapter.onNodesChange((change) => changes.push(change))
  await until(
    () =>
      a.adapter.liveNodes.includes(GHOST) &&
      (!both || a.adapter.liveNodes.includes(OTHER_GHOST)) &&
      a.adapter.liveNodes.includes(b.adapter.node),
    5000,
    'the ghosts and b live to a',
  )
  const replies: BroadcastReply[] = []
  const total = new Promise<number>((counted) => {
    a.adapter.broadcastWithAck(
      message('ask', [1]),
      to(['room']),
      Number.POSITIVE_INFINITY,
      counted,
      (reply) => replies.push(reply),
    )
  })
  await until(() => published(a, `${cluster.prefix}:request`).length === 1, 5000, "a's broadcast sent")
  const [request] = published(a, `${cluster.prefix}:request`)
  const { id } = JSON.parse(request?.[2] ?? '{}') as { id?: string }
  return { a, total, replies, changes, id }
}

describe.skipIf(skipRedisSuites())(
  'a broadcast with acks whose node leaves the live set before counting',
  () => {
    const suite = fakeClusterSuite()
    /** Raw clients of the suite's Redis, closed after each test. */
    const rawClient = rawRedisEach(() => suite.redis().url)

    it('counts and logs a node whose record lapsed, by its id', async () => {
      const cluster = suite.cluster()
      const raw = await rawClient()
      await haunt(raw, cluster.prefix)
      const { a, total, replies, changes } = await askedOfGhost(cluster)

      // Its record goes without a goodbye mark: a lapse, as a's next heartbeat reads it.
      await lapse(raw, cluster.prefix)

      expect(await within(total, 5000, "a's total")).toBe(1)
      await until(() => replies.length === 1, 5000, "b0's reply")
      expect(replies).toEqual([{ ok: true, value: null }])
      expect(a.adapter.stats.incompleteRequests).toBe(1)
      expect(ackLines(a)).toEqual([
        {
          message: `@parley/redis: a broadcast with acks went uncounted by some nodes: 1 dropped out of the live set before counting their sockets, their heartbeat record lapsed without a goodbye: ${GHOST}`,
          details: { lapsed: [GHOST], incompleteRequests: 1, times: 1 },
        },
      ])
      expect(changes.flatMap((change) => change.lapsed)).toEqual([GHOST])
    })

    it('neither counts nor logs a node whose goodbye mark its heartbeat reads', async () => {
      const cluster = suite.cluster()
      const raw = await rawClient()
      await haunt(raw, cluster.prefix)
      const { a, total, changes } = await askedOfGhost(cluster)

      // As a closing node's `stop()` does: the mark first, then the record removed.
      await leaveMarked(raw, cluster.prefix)

      expect(await within(total, 5000, "a's total")).toBe(1)
      expect(changes.flatMap((change) => change.left)).toEqual([GHOST])
      expect(a.adapter.stats.incompleteRequests).toBe(0)
      expect(ackLines(a)).toEqual([])
    })

    it('neither counts nor logs a node that says it left', async () => {
      const cluster = suite.cluster()
      // Written before a starts, whose first heartbeat reads it; no other beat of a's until the
      // goodbye, which is all that can take the ghost out of a's live set in this test.
      const raw = await rawClient()
      await haunt(raw, cluster.prefix)
      const { a, total, changes } = await askedOfGhost(cluster, 60_000)

      // As a closing node's `stop()` does: the record removed, then the goodbye said.
      await lapse(raw, cluster.prefix)
      await sayLeft(raw, cluster.prefix)

      expect(await within(total, 5000, "a's total")).toBe(1)
      expect(changes.flatMap((change) => change.left)).toEqual([GHOST])
      expect(a.adapter.stats.incompleteRequests).toBe(0)
      expect(ackLines(a)).toEqual([])
    })

    it('neither counts nor logs a lapsed node whose count comes after all, while the total waits for another', async () => {
      const cluster = suite.cluster()
      const raw = await rawClient()
      await haunt(raw, cluster.prefix)
      await haunt(raw, cluster.prefix, OTHER_GHOST)
      const { a, total, changes, id } = await askedOfGhost(cluster, undefined, true)

      // The ghost lapses; the other is still waited for, and the total with it.
      await lapse(raw, cluster.prefix)
      await until(() => changes.some((change) => change.lapsed.includes(GHOST)), 5000, 'the lapse read')
      // Alive after all, the ghost counts (none of its sockets took it); then the other says it
      // left: both on a's subscriber, in that order.
      const response = `${cluster.prefix}:response:${a.adapter.node}`
      await raw.sendCommand(['PUBLISH', response, JSON.stringify({ n: GHOST, id, k: 'count', c: 0 })])
      await sayLeft(raw, cluster.prefix, OTHER_GHOST)

      expect(await within(total, 5000, "a's total")).toBe(1)
      expect(changes.flatMap((change) => change.left)).toEqual([OTHER_GHOST])
      expect(a.adapter.stats.incompleteRequests).toBe(0)
      expect(ackLines(a)).toEqual([])
    })
  },
)
