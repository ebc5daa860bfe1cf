// A node closed with a plain `app.close()` (no drain of its own first: Parley's close hook drains
// it) while another node of the cluster was killed a moment before and is still in the live set,
// where every cluster-wide lookup waits for the dead node's answer until the adapter's
// `requestTimeout` (5 s) or until the node leaves the set. The close must end cleanly (Fastify
// rejects it when a close hook outlives `pluginTimeout`), and the person on the node that stays
// must be told that the one whose network went before the close has left.
import { afterEach, describe, expect, it } from 'vitest'
import { onFreePort } from '../../../test/support/ports.js'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { chatNodesSuite, join, liveNodes, peopleHeard } from './chat-nodes.js'
import { type ChatNode as NodeProcess, startNode as startProcess, stopNode } from './node-process.js'

describe.skipIf(skipRedisSuites())('a plain close beside a node that was just killed', () => {
  const suite = chatNodesSuite()
  const processes: NodeProcess[] = []

  // Registered after the suite's: runs before it, so the killed node is gone before the others close.
  afterEach(async () => {
    await Promise.all(processes.splice(0).map((p) => stopNode(p, 'SIGKILL')))
  })

  it('ends cleanly, and the node that stays tells its people who is left', async () => {
    // Node A asks no node to adopt what nobody claimed (its adapter without `askAdoption`):
    // adopted by node B, Ona's session would stay listed there through her recovery window.
    const [a, b] = [await suite.startNode('a', { adopts: false }), await suite.startNode('b')]
    const dead = await onFreePort((port) => startProcess('c', port, suite.redis.url))
    processes.push(dead)
    await expect.poll(() => liveNodes(a) === 2 && liveNodes(b) === 2, { timeout: 10_000 }).toBe(true)

    // Ona reaches node A through a link that can go down; Pim is on node B.
    const link = await suite.proxy(Number(new URL(a.url).port))
    const [ona, pim] = [await suite.person('ona', link), await suite.person('pim', b)]
    const heard = peopleHeard(pim, 'lobby')
    await join(ona, 'lobby')
    await join(pim, 'lobby')
    await expect.poll(() => heard.at(-1), { timeout: 10_000 }).toEqual(['ona', 'pim'])

    // Ona's network goes without a goodbye, node C is killed, and node A closes at once: its drain
    // hands Ona's session off, and nobody claims it within Parley's 5 s.
    link.offline = true
    await stopNode(dead, 'SIGKILL')
    suite.nodes.splice(suite.nodes.indexOf(a), 1)
    await expect(a.app.close()).resolves.toBeUndefined()
    await a.cluster.close()

    // Node A has left (it said so as it closed): node B tells the lobby who is there, once its
    // lookup is over (node C answers nothing: it leaves B's live set within 8 s of the kill).
    await expect.poll(() => heard.at(-1), { timeout: 15_000 }).toEqual(['pim'])
  }, 60_000)
})
