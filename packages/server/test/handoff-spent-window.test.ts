// A drain with handoff and a client away whose recovery window is already spent when the drain
// begins (its transport gone long enough before, the session's own end not run yet: a stall of
// the server's thread): the session ends as its window's end would ('transport close'), and is
// not handed off. Stored for 1 ms, it would wait for a claim that cannot come until the drain's
// deadline, then have its tail sealed. On the Adapter contract (the in-process cluster adapter).
import type { CloseReason } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { awayBesideLive } from './away-beside-live.js'
import { Cluster } from './cluster-adapter.js'
import { handoffScene } from './handoff-scene.js'
import { startServer } from './helpers.js'
import type { RawClient } from './raw-client.js'

const opened = handoffScene()

/** The recovery window: short, so that a stall of the thread can outlast it. */
const WINDOW = 200

/** Blocks this thread for `ms`: what the server does meanwhile waits, its timers with it. */
function block(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

describe('a drain with handoff', () => {
  it('ends at once, and does not hand off, a session whose away client’s window is spent', async () => {
    const cluster = new Cluster({ handoff: true })
    const a = await startServer({
      adapter: cluster.adapter('a'),
      handoff: { timeout: 2000, retrySpread: 0 },
      recovery: { window: WINDOW },
    })
    opened.nodes.push(a)
    const reasons = new Map<string, CloseReason>()
    a.app.parley.on('connection', (socket) => {
      socket.on('disconnect', (reason) => reasons.set(socket.id, reason))
    })
    const raws: RawClient[] = []
    try {
      const { live, away } = await awayBesideLive(a.app, a.base, raws)
      // The thread stalls past the away client's window: its end is due, not run yet, as the
      // drain begins.
      block(WINDOW + 100)
      await a.app.close()
      opened.letGo(a)
      expect(cluster.handOffSids).toEqual([live.sid])
      expect(cluster.handOffTtls.has(away.sid)).toBe(false)
      expect(reasons.get(away.id)).toBe('transport close')
    } finally {
      for (const raw of raws) raw.close()
    }
  })
})
