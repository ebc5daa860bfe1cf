// A cluster query stops waiting for a node that drops out of the live set while it waits. A node
// that said goodbye closed, and its sockets with it: the list is whole without it. A node whose
// heartbeat record lapsed (its Redis connection back later than one record lifetime after an empty
// Redis restart, a stalled process) may still hold sockets: the short list is counted in
// `stats.incompleteRequests` and logged with the node and the query's kind, as a timeout is.
import type { NodesChange } from '@parley/redis'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { GHOST, haunt, lapse, leaveMarked, published, sayLeft } from './ghost-node.js'
import { type FakeCluster, type FakeNode, fakeClusterSuite, to } from './handoff-support.js'
import { rawRedisEach } from './raw-redis.js'

/** Far longer than the test: a query that ends, ends because the ghost dropped out. */
const REQUEST_TIMEOUT = 60_000

/** What `node` logged of its cluster queries. */
function queryLines(node: FakeNode): FakeNode['warned'] {
  return node.warned.filter(({ message }) => message.includes('cluster query'))
}

/**
 * `a`, which asks, with the ghost and `b` live to it; `b` holds socket b0 in room `room`. `a`'s
 * heartbeat interval is `aBeat` ms when given. Resolves with the query started once it went out.
 */
async function askedOfGhost(cluster: FakeCluster, aBeat?: number) {
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
    () => a.adapter.liveNodes.includes(GHOST) && a.adapter.liveNodes.includes(b.adapter.node),
    5000,
    'the ghost and b live to a',
  )
  const fetched = a.adapter.fetchSockets(to(['room']))
  await until(() => published(a, `${cluster.prefix}:request`).length === 1, 5000, "a's query sent")
  return { a, fetched, changes }
}

describe.skipIf(skipRedisSuites())('a cluster query whose node drops out of the live set', () => {
  const suite = fakeClusterSuite()
  /** Raw clients of the suite's Redis, closed after each test. */
  const rawClient = rawRedisEach(() => suite.redis().url)

  it('counts and logs a node whose record lapsed, by its id and the kind of the query', async () => {
    const cluster = suite.cluster()
    const raw = await rawClient()
    await haunt(raw, cluster.prefix)
    const { a, fetched, changes } = await askedOfGhost(cluster)

    // Its record goes without a goodbye mark: a lapse, as a's next heartbeat reads it.
    await lapse(raw, cluster.prefix)
    const sockets = await within(fetched, 5000, "a's fetchSockets")

    expect(sockets.map((socket) => socket.id)).toEqual(['b0'])
    expect(a.adapter.stats.incompleteRequests).toBe(1)
    expect(queryLines(a)).toEqual([
      {
        message: `@parley/redis: a cluster query went unanswered by some nodes: 1 dropped out of the live set before answering, their heartbeat record lapsed without a goodbye: ${GHOST}`,
        details: { query: 'fetch', lapsed: [GHOST], incompleteRequests: 1, times: 1 },
      },
    ])
    expect(changes.flatMap((change) => change.lapsed)).toEqual([GHOST])
  })

  it('neither counts nor logs a node whose goodbye mark its heartbeat reads', async () => {
    const cluster = suite.cluster()
    const raw = await rawClient()
    await haunt(raw, cluster.prefix)
    const { a, fetched, changes } = await askedOfGhost(cluster)

    // As a closing node's `stop()` does: the mark first, then the record removed.
    await leaveMarked(raw, cluster.prefix)
    const sockets = await within(fetched, 5000, "a's fetchSockets")

    expect(sockets.map((socket) => socket.id)).toEqual(['b0'])
    expect(changes.flatMap((change) => change.left)).toEqual([GHOST])
    expect(a.adapter.stats.incompleteRequests).toBe(0)
    expect(queryLines(a)).toEqual([])
  })

  it('neither counts nor logs a node that says it left', async () => {
    const cluster = suite.cluster()
    // Written before a starts, whose first heartbeat reads it; no other beat of a's until the
    // goodbye, which is all that can take the ghost out of a's live set in this test.
    const raw = await rawClient()
    await haunt(raw, cluster.prefix)
    const { a, fetched, changes } = await askedOfGhost(cluster, 60_000)

    // As a closing node's `stop()` does: the record removed, then the goodbye said.
    await lapse(raw, cluster.prefix)
    await sayLeft(raw, cluster.prefix)
    const sockets = await within(fetched, 5000, "a's fetchSockets")

    expect(sockets.map((socket) => socket.id)).toEqual(['b0'])
    expect(changes.flatMap((change) => change.left)).toEqual([GHOST])
    expect(a.adapter.stats.incompleteRequests).toBe(0)
    expect(queryLines(a)).toEqual([])
  })
})
