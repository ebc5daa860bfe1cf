// A drain with handoff and a client away whose recovery window is spent only once its session is
// frozen (not at the drain's check before the freeze, see handoff-spent-window.test.ts): spent
// during the batch's freezes, or while the store waited (for Redis or its turn, where the adapter
// then writes nothing and answers false). The session ends as its window's end would ('transport
// close', its record of how it ended the same), and is not stored: stored for 1 ms, it expired
// with no end said anywhere, no `disconnect`, no record; given up as not stored, it ended
// 'server shutdown'. On the Adapter contract (the in-process cluster adapter).
import type { CloseReason } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { awayBesideLive } from './away-beside-live.js'
import { Cluster } from './cluster-adapter.js'
import { handoffScene } from './handoff-scene.js'
import { sleep, startServer } from './helpers.js'
import type { RawClient } from './raw-client.js'
import { recordingNode } from './recording-node.js'

const opened = handoffScene()

/** The recovery window: long enough that the drain's check before the freeze finds it running. */
const WINDOW = 1000

/** Blocks this thread for `ms`: what the server does meanwhile waits, its timers with it. */
function block(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

/**
 * A node of `cluster` that keeps each session's `disconnect` reason and each record of how a
 * session ended (`Adapter.sessionEnded`), with a live client and an away one. `slowFor`: the
 * store of that session waits past its window and writes nothing (Redis away, or a burst ahead
 * of its write, and the adapter finds nothing left of the window when its turn comes).
 */
async function nodeWithAway(cluster: Cluster, raws: RawClient[], slowFor?: () => string) {
  const { adapter, records } = recordingNode(cluster, 'a', async (snapshot, ttl, stored) => {
    if (snapshot.sid !== slowFor?.()) return stored()
    await sleep(ttl + 100)
    return false
  })
  const a = await startServer({
    adapter,
    handoff: { timeout: 3000, retrySpread: 0 },
    recovery: { window: WINDOW },
  })
  opened.nodes.push(a)
  const reasons = new Map<string, CloseReason>()
  a.app.parley.on('connection', (socket) => {
    socket.on('disconnect', (reason) => reasons.set(socket.id, reason))
  })
  const { live, away } = await awayBesideLive(a.app, a.base, raws)
  return { a, live, away, reasons, records }
}

describe('a drain with handoff, an away client’s window spent once its session is frozen', () => {
  it('ends the session as the window would when it is spent during the freeze, and stores nothing', async () => {
    const cluster = new Cluster({ handoff: true })
    const raws: RawClient[] = []
    try {
      const { a, live, away, reasons, records } = await nodeWithAway(cluster, raws)
      const socket = a.app.parley.sockets.get(away.id)
      if (!socket) throw new Error('the away socket is gone')
      // Its freeze stalls the thread past its window: the check before it found the window
      // running, the ttl after it finds it spent.
      let frozen = false
      const freeze = socket.freeze.bind(socket)
      socket.freeze = () => {
        const snapshot = freeze()
        frozen = true
        block(WINDOW + 100)
        return snapshot
      }
      await a.app.close()
      opened.letGo(a)
      expect(frozen).toBe(true)
      expect(cluster.handOffSids).toEqual([live.sid])
      expect(reasons.get(away.id)).toBe('transport close')
      expect(records.get(away.sid)?.close).toMatchObject({ reason: 'transport close' })
    } finally {
      for (const raw of raws) raw.close()
    }
  })

  it('ends the session as the window would when it is spent while the store waited and wrote nothing', async () => {
    const cluster = new Cluster({ handoff: true })
    const raws: RawClient[] = []
    try {
      let slow = ''
      const { a, live, away, reasons, records } = await nodeWithAway(cluster, raws, () => slow)
      slow = away.sid
      await a.app.close()
      opened.letGo(a)
      // The store wrote nothing of the away session: the cluster holds only the live one.
      expect(cluster.handOffSids).toEqual([live.sid])
      expect(reasons.get(away.id)).toBe('transport close')
      expect(records.get(away.sid)?.close).toMatchObject({ reason: 'transport close' })
    } finally {
      for (const raw of raws) raw.close()
    }
  })
})
