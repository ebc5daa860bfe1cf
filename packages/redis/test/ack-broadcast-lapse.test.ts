// A broadcast with acks stops waiting for the count of a node that drops out of the live set
// before giving it. A node that said goodbye closed, and its sockets with it: the total is whole
// without it. A node whose heartbeat record lapsed (a stalled process, its Redis connection back
// later than one record lifetime after an empty Redis restart) may still hold sockets that took
// the broadcast: the short total is counted in `stats.incompleteRequests` and logged with the
// node, as a count that comes too late is.
import type { BroadcastReply } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { GHOST, haunt, lapse, published, sayLeft } from './ghost-node.js'
import { type FakeNode, message, to } from './handoff-support.js'
import { askedOfGhost, droppedOutCases } from './lapse-scene.js'

/** What `node` logged of its broadcasts with acks. */
function ackLines(node: FakeNode): FakeNode['warned'] {
  return node.warned.filter(({ message }) => message.includes('broadcast with acks'))
}

/** A second ghost (see ghost-node.ts), for a test where one is still waited for. */
const OTHER_GHOST = 'ghost-2'

/**
 * `a` asks room `room`, with acks, under `prefix`. Resolves once the broadcast went out (no
 * timeout of its own: only the counts end its wait), with its total to come, the replies so far,
 * and its request's id.
 */
async function ask(a: FakeNode, prefix: string) {
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
  await until(() => published(a, `${prefix}:request`).length === 1, 5000, "a's broadcast sent")
  const [request] = published(a, `${prefix}:request`)
  const { id } = JSON.parse(request?.[2] ?? '{}') as { id?: string }
  return { total, replies, id }
}

describe.skipIf(skipRedisSuites())(
  'a broadcast with acks whose node leaves the live set before counting',
  () => {
    const { suite, rawClient } = droppedOutCases({
      ask,
      ended: async ({ total, replies }, lapsed) => {
        expect(await within(total, 5000, "a's total")).toBe(1)
        if (!lapsed) return
        await until(() => replies.length === 1, 5000, "b0's reply")
        expect(replies).toEqual([{ ok: true, value: null }])
      },
      lines: ackLines,
      lapse: {
        name: 'counts and logs a node whose record lapsed, by its id',
        line: {
          message: `@parley/redis: a broadcast with acks went uncounted by some nodes: 1 dropped out of the live set before counting their sockets, their heartbeat record lapsed without a goodbye: ${GHOST}`,
          details: { lapsed: [GHOST], incompleteRequests: 1, times: 1 },
        },
      },
    })

    it('neither counts nor logs a lapsed node whose count comes after all, while the total waits for another', async () => {
      const cluster = suite.cluster()
      const raw = await rawClient()
      await haunt(raw, cluster.prefix)
      await haunt(raw, cluster.prefix, OTHER_GHOST)
      const {
        a,
        changes,
        asked: { total, id },
      } = await askedOfGhost(cluster, ask, { ghosts: [GHOST, OTHER_GHOST] })

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
