// A drain with handoff whose client, told to resume elsewhere, never does within its recovery
// window: its snapshot, stored for that window, expires with it, and nobody can claim or adopt the
// session any more. It ends on the draining node as its window's end would ('transport close',
// its `disconnect`, its record for a late resume on any node), not sealed and ended 'server
// handoff', as if it went on elsewhere, with no node ever saying how it ended. On the Adapter
// contract (the in-process cluster adapter).
import type { CloseReason } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { Cluster } from './cluster-adapter.js'
import { handoffScene } from './handoff-scene.js'
import { startServer } from './helpers.js'
import { type RawClient, rawConnect } from './raw-client.js'
import { recordingNode } from './recording-node.js'
import { Registry, sampleOf } from './registry.js'

const opened = handoffScene()

describe('a drain with handoff, a session nobody claims', () => {
  // With adoption or without: a session whose window is spent is not asked of the live nodes.
  it.each([true, false])(
    'ends as its window would once that window ran out, not sealed as if it moved (adoption: %s)',
    async (adopts) => {
      const cluster = new Cluster({ handoff: true, adopts })
      const { adapter, records } = recordingNode(cluster, 'a')
      // The recovery window ends well before the adoption's last second of the drain's wait.
      const registry = new Registry()
      const a = await startServer({
        adapter,
        metrics: { registry },
        handoff: { timeout: 3000, retrySpread: 0 },
        recovery: { window: 300 },
      })
      opened.nodes.push(a)
      // Alive: the drain does not seal at once for a node that starts later.
      const b = await startServer({ adapter: cluster.adapter('b') })
      opened.nodes.push(b)
      const reasons = new Map<string, CloseReason>()
      a.app.parley.on('connection', (socket) => {
        socket.on('disconnect', (reason) => reasons.set(socket.id, reason))
      })
      const raws: RawClient[] = []
      try {
        // A client that takes its CLOSE 'server handoff' and never resumes.
        const client = await rawConnect('websocket', a.base)
        raws.push(client)
        await a.app.close()
        opened.letGo(a)
        expect(cluster.handOffSids).toEqual([client.sid])
        expect(reasons.get(client.id)).toBe('transport close')
        expect(records.get(client.sid)?.close).toMatchObject({ reason: 'transport close' })
        expect(cluster.adoptionAsks).toEqual([])
        expect(cluster.withdrawals).toBe(1)
        // Nobody took it: one outcome, as for a sealed session.
        expect(await sampleOf(registry, 'parley_handoffs_total', { outcome: 'stored' })).toBe(1)
        expect(await sampleOf(registry, 'parley_handoffs_total', { outcome: 'unclaimed' })).toBe(1)
        expect(await sampleOf(registry, 'parley_handoffs_total', { outcome: 'withdrawn' })).toBe(0)
      } finally {
        for (const raw of raws) raw.close()
      }
    },
  )
})
