// A broadcast with acks whose own timeout ends before a live node counted its sockets gives its
// total without that node's: the node may hold sockets that took it. The short total is counted
// in `stats.incompleteRequests` and logged, once, as when the node's count is late past
// requestTimeout or the node lapsed, not given quietly.
import type { NodesChange } from '@parley/redis'
import { afterEach, describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { GHOST, haunt, lapse, published } from './ghost-node.js'
import { type FakeNode, fakeClusterSuite, message, to } from './handoff-support.js'
import { rawRedis } from './raw-redis.js'

/** Far longer than the test: a wait for counts that ends, ends at the broadcast's own timeout. */
const REQUEST_TIMEOUT = 60_000

/** The broadcast's own timeout: shorter than requestTimeout, long past a's first heartbeat. */
const TIMEOUT = 2000

/** A second ghost (see ghost-node.ts), still waited for when the first lapses. */
const OTHER_GHOST = 'ghost-2'

/** What `node` logged of its broadcasts with acks. */
function ackLines(node: FakeNode): FakeNode['warned'] {
  return node.warned.filter(({ message }) => message.includes('broadcast with acks'))
}

describe.skipIf(skipRedisSuites())('a broadcast with acks whose own timeout ends first', () => {
  const suite = fakeClusterSuite()
  const cleanups: (() => Promise<unknown>)[] = []
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup()
  })

  /** `a`, with socket a0 in `room`, and the ghosts `ghosts` live to it; nothing answers for them. */
  async function askedOfGhosts(ghosts: string[]) {
    const cluster = suite.cluster()
    const raw = await rawRedis(suite.redis().url, cleanups)
    for (const ghost of ghosts) await haunt(raw, cluster.prefix, ghost)
    const a = await cluster.node(undefined, { requestTimeout: REQUEST_TIMEOUT })
    a.sockets.add('a0')
    a.adapter.addAll('a0', ['a0', 'room'])
    const changes: NodesChange[] = []
    a.adapter.onNodesChange((change) => changes.push(change))
    await until(
      () => ghosts.every((ghost) => a.adapter.liveNodes.includes(ghost)),
      5000,
      'the ghosts live to a',
    )
    const total = new Promise<number>((counted) => {
      a.adapter.broadcastWithAck(message('ask', [1]), to(['room']), TIMEOUT, counted, () => {})
    })
    await until(() => published(a, `${cluster.prefix}:request`).length === 1, 5000, "a's broadcast sent")
    return { a, raw, cluster, total, changes }
  }

  it('counts and logs a live node that had not counted by then', async () => {
    const { a, total } = await askedOfGhosts([GHOST])

    expect(await within(total, TIMEOUT + 5000, "a's total")).toBe(1)
    expect(a.adapter.stats.incompleteRequests).toBe(1)
    expect(ackLines(a)).toEqual([
      {
        message: `@parley/redis: a broadcast with acks went uncounted by some nodes: 1 did not count its sockets within the broadcast's own timeout of ${TIMEOUT} ms`,
        details: { incompleteRequests: 1, times: 1 },
      },
    ])
  })

  it('says a node that lapsed meanwhile in the same line, once', async () => {
    const { a, raw, cluster, total, changes } = await askedOfGhosts([GHOST, OTHER_GHOST])

    // One ghost lapses while the total still waits for the other.
    await lapse(raw, cluster.prefix)
    await until(() => changes.some((change) => change.lapsed.includes(GHOST)), 5000, 'the lapse read')

    expect(await within(total, TIMEOUT + 5000, "a's total")).toBe(1)
    expect(a.adapter.stats.incompleteRequests).toBe(1)
    expect(ackLines(a)).toEqual([
      {
        message: `@parley/redis: a broadcast with acks went uncounted by some nodes: 1 did not count its sockets within the broadcast's own timeout of ${TIMEOUT} ms; 1 dropped out of the live set before counting their sockets, their heartbeat record lapsed without a goodbye: ${GHOST}`,
        details: { lapsed: [GHOST], incompleteRequests: 1, times: 1 },
      },
    ])
  })
})
