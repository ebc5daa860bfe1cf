// The scene of the suites of a request whose node drops out of the live set while the request
// waits for it (ack-broadcast-lapse, query-lapse): a node asks, with the ghost (see ghost-node.ts)
// and a node that answers live to it; then the ghost's record lapses, or it leaves. The cases
// both kinds of request share are here, run by each suite on its own kind.
import type { NodesChange } from '@parley/redis'
import { expect, it } from 'vitest'
import { until } from '../../server/test/helpers.js'
import { GHOST, haunt, lapse, leaveMarked, sayLeft } from './ghost-node.js'
import { type FakeCluster, type FakeNode, fakeClusterSuite } from './handoff-support.js'
import { rawRedisEach } from './raw-redis.js'

/** Far longer than the test: a request that ends, ends because the ghost dropped out. */
const REQUEST_TIMEOUT = 60_000

/**
 * `a`, which asks, with `ghosts` (written by the test beforehand) and `b` live to it; `b` holds
 * socket b0 in room `room`. `a`'s heartbeat interval is `aBeat` ms when given. Resolves once
 * `ask` (given `a` and the cluster's prefix) sent a's request, which it waits for itself, with
 * what it gave and the changes of a's live set from the start.
 */
export async function askedOfGhost<Asked>(
  cluster: FakeCluster,
  ask: (a: FakeNode, prefix: string) => Promise<Asked>,
  { aBeat, ghosts = [GHOST] }: { aBeat?: number; ghosts?: string[] } = {},
): Promise<{ a: FakeNode; changes: NodesChange[]; asked: Asked }> {
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
      ghosts.every((ghost) => a.adapter.liveNodes.includes(ghost)) &&
      a.adapter.liveNodes.includes(b.adapter.node),
    5000,
    ghosts.length > 1 ? 'the ghosts and b live to a' : 'the ghost and b live to a',
  )
  return { a, changes, asked: await ask(a, cluster.prefix) }
}

/** One kind of request, as the shared cases ask it and read its outcome. */
export interface RequestKind<Asked> {
  /**
   * Sends a's request to room `room`, and waits until it went out (on a's commands). What is to
   * come of it goes in an object: a promise returned as it is would be waited for here.
   */
  ask(a: FakeNode, prefix: string): Promise<Asked>
  /**
   * Waits for the request to end and checks that it has b0's part alone; `lapsed` when the ghost
   * dropped out by a lapse.
   */
  ended(asked: Asked, lapsed: boolean): Promise<void>
  /** What `node` logged of this kind of request. */
  lines(node: FakeNode): FakeNode['warned']
  /** The first case's name, and the line it logs for the ghost's lapse. */
  lapse: { name: string; line: FakeNode['warned'][number] }
}

/**
 * The cases of a request whose node drops out of the live set, for `kind`: a lapse counted and
 * logged, a goodbye (marked, or said) neither. Call it in the suite's body; it gives the suite
 * (a Redis for the file) and its raw clients, for cases of the suite's own.
 */
export function droppedOutCases<Asked>(kind: RequestKind<Asked>) {
  const suite = fakeClusterSuite()
  /** Raw clients of the suite's Redis, closed after each test. */
  const rawClient = rawRedisEach(() => suite.redis().url)
  const ask = (a: FakeNode, prefix: string) => kind.ask(a, prefix)

  it(kind.lapse.name, async () => {
    const cluster = suite.cluster()
    const raw = await rawClient()
    await haunt(raw, cluster.prefix)
    const { a, asked, changes } = await askedOfGhost(cluster, ask)

    // Its record goes without a goodbye mark: a lapse, as a's next heartbeat reads it.
    await lapse(raw, cluster.prefix)

    await kind.ended(asked, true)
    expect(a.adapter.stats.incompleteRequests).toBe(1)
    expect(kind.lines(a)).toEqual([kind.lapse.line])
    expect(changes.flatMap((change) => change.lapsed)).toEqual([GHOST])
  })

  it('neither counts nor logs a node whose goodbye mark its heartbeat reads', async () => {
    const cluster = suite.cluster()
    const raw = await rawClient()
    await haunt(raw, cluster.prefix)
    const { a, asked, changes } = await askedOfGhost(cluster, ask)

    // As a closing node's `stop()` does: the mark first, then the record removed.
    await leaveMarked(raw, cluster.prefix)

    await kind.ended(asked, false)
    expect(changes.flatMap((change) => change.left)).toEqual([GHOST])
    expect(a.adapter.stats.incompleteRequests).toBe(0)
    expect(kind.lines(a)).toEqual([])
  })

  it('neither counts nor logs a node that says it left', async () => {
    const cluster = suite.cluster()
    // Written before a starts, whose first heartbeat reads it; no other beat of a's until the
    // goodbye, which is all that can take the ghost out of a's live set in this test.
    const raw = await rawClient()
    await haunt(raw, cluster.prefix)
    const { a, asked, changes } = await askedOfGhost(cluster, ask, { aBeat: 60_000 })

    // As a closing node's `stop()` does: the record removed, then the goodbye said.
    await lapse(raw, cluster.prefix)
    await sayLeft(raw, cluster.prefix)

    await kind.ended(asked, false)
    expect(changes.flatMap((change) => change.left)).toEqual([GHOST])
    expect(a.adapter.stats.incompleteRequests).toBe(0)
    expect(kind.lines(a)).toEqual([])
  })

  return { suite, rawClient }
}
