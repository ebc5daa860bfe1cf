// A drain hands each session off for what is left of its client's recovery window: the whole
// window for a client still connected (its window starts as it is told to resume elsewhere), what
// is left of it for one that was away already (its window running since its transport went).
// Stored for a whole new window, an away client's session stayed claimable, and was kept by the
// node that took it over, past the end of its client's window. On the Adapter contract (the
// in-process cluster adapter); end to end on Redis in packages/redis/test/away-window.test.ts.
import { describe, expect, it } from 'vitest'
import { awayBesideLive, expectStoredFor } from './away-beside-live.js'
import { Cluster } from './cluster-adapter.js'
import { handoffScene } from './handoff-scene.js'
import { sleep, startServer } from './helpers.js'
import type { RawClient } from './raw-client.js'

const opened = handoffScene()

/** The recovery window: long, so that what an away client spent of it shows. */
const WINDOW = 60_000

/** How long the away client is gone before the drain, at least. */
const AWAY_MS = 300

describe('a drain with handoff', () => {
  it('stores an away client’s session for what is left of its window, a connected one’s for the whole window', async () => {
    const cluster = new Cluster({ handoff: true })
    const a = await startServer({
      adapter: cluster.adapter('a'),
      handoff: { timeout: 400, retrySpread: 0 },
      recovery: { window: WINDOW },
    })
    opened.nodes.push(a)
    const raws: RawClient[] = []
    try {
      // The server saw its transport go: the client's window runs from no later than now.
      const { live, away } = await awayBesideLive(a.app, a.base, raws)
      const wentAt = performance.now()
      await sleep(AWAY_MS)
      const spent = Math.floor(performance.now() - wentAt)
      await a.app.close()
      opened.letGo(a)
      expectStoredFor(cluster.handOffTtls, { live, away }, WINDOW, spent)
    } finally {
      for (const raw of raws) raw.close()
    }
  })

  it('moves an away client’s session (its resume reached another node) for what is left of its window, a connected one’s for the whole window', async () => {
    const cluster = new Cluster({ handoff: true })
    const a = await startServer({
      adapter: cluster.adapter('a'),
      handoff: { timeout: 400, retrySpread: 0 },
      recovery: { window: WINDOW },
    })
    opened.nodes.push(a)
    const raws: RawClient[] = []
    try {
      const { live, away } = await awayBesideLive(a.app, a.base, raws)
      const wentAt = performance.now()
      await sleep(AWAY_MS)
      const spent = Math.floor(performance.now() - wentAt)
      // Asked for by another node, as its client's WebSocket resume there would (the claim never
      // comes: that node died, say): stored for a whole new window, the away client's session
      // would stay claimable past the end of its own.
      const sockets = cluster.nodes.get('a')?.sockets
      expect(await sockets?.handOff(away.sid)).toBe(true)
      expect(await sockets?.handOff(live.sid)).toBe(true)
      expectStoredFor(cluster.handOffTtls, { live, away }, WINDOW, spent)
      await a.app.close()
      opened.letGo(a)
    } finally {
      for (const raw of raws) raw.close()
    }
  })
})
