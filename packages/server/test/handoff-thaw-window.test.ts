// A session whose handoff was given up on (a move whose store refused or did not answer in time,
// a drain's session left to finish here) stays on this node; when its client was away at the
// freeze, it keeps what was left of that client's recovery window, counted from when its transport
// went, not a whole new one: it ends when a single node would have ended it, and a window spent
// while the store waited ends it as that window's end would ('transport close', its
// `disconnect`, its record). On the Adapter contract (the in-process cluster adapter); the window
// itself, on a fake clock, in src/session.test.ts.
import { type CloseReason, PacketType } from '@parley/protocol'
import type { ParleyServerOptions } from '@parley/server'
import type { FastifyInstance } from 'fastify'
import { describe, expect, it } from 'vitest'
import { awayBesideLive, expectStoredFor } from './away-beside-live.js'
import { Cluster } from './cluster-adapter.js'
import { handoffScene } from './handoff-scene.js'
import { sleep, startServer, until } from './helpers.js'
import { type RawClient, rawConnect } from './raw-client.js'
import { recordingNode } from './recording-node.js'

const opened = handoffScene()

/** How long the away client is gone before its move, at least. */
const AWAY_MS = 300

/**
 * A node of `cluster` whose store refuses the sessions `refuse` names (its next answer for each,
 * false at once) and, for those `slow` names, waits past what was left of their window (the ttl
 * it is given) and writes nothing. It keeps each session's `disconnect` reason and each record
 * of how a session ended (`Adapter.sessionEnded`).
 */
async function failingNode(
  cluster: Cluster,
  options: ParleyServerOptions,
  failing: { refuse?: Set<string>; slow?: Set<string> },
  setup?: (app: FastifyInstance) => void,
) {
  const { adapter, records } = recordingNode(cluster, 'a', async (snapshot, ttl, stored) => {
    if (failing.refuse?.delete(snapshot.sid)) return false
    if (failing.slow?.has(snapshot.sid)) {
      await sleep(ttl + 100)
      return false
    }
    return stored()
  })
  const reasons = new Map<string, CloseReason>()
  const a = await startServer({ adapter, ...options }, (app) => {
    app.parley.on('connection', (socket) => {
      socket.on('disconnect', (reason) => reasons.set(socket.id, reason))
    })
    setup?.(app)
  })
  opened.nodes.push(a)
  const sockets = cluster.nodes.get('a')?.sockets
  if (!sockets) throw new Error('node a has no sockets')
  return { a, sockets, reasons, records }
}

describe('a handoff given up on, its client away', () => {
  it('keeps what was left of the window after a failed move: a drain then stores it for no more than that', async () => {
    const window = 60_000
    const cluster = new Cluster({ handoff: true })
    const refuse = new Set<string>()
    const { a, sockets } = await failingNode(
      cluster,
      { handoff: { timeout: 400, retrySpread: 0 }, recovery: { window } },
      { refuse },
    )
    const raws: RawClient[] = []
    try {
      const { live, away } = await awayBesideLive(a.app, a.base, raws)
      const wentAt = performance.now()
      await sleep(AWAY_MS)
      // Asked for by another node, as its client's WebSocket resume there would; the store
      // refuses it, and the session goes on here.
      refuse.add(away.sid)
      expect(await sockets.handOff(away.sid)).toBe(false)
      expect(a.app.parley.sockets.get(away.id)?.connected).toBe(true)
      const spent = Math.floor(performance.now() - wentAt)
      await a.app.close()
      opened.letGo(a)
      expectStoredFor(cluster.handOffTtls, { live, away }, window, spent)
    } finally {
      for (const raw of raws) raw.close()
    }
  })

  it('ends the session as its window would when the window was spent while a move’s store waited', async () => {
    const cluster = new Cluster({ handoff: true })
    const slow = new Set<string>()
    const { a, sockets, reasons, records } = await failingNode(
      cluster,
      { handoff: { timeout: 3000, retrySpread: 0 }, recovery: { window: 1000 } },
      { slow },
    )
    const raws: RawClient[] = []
    try {
      const { away } = await awayBesideLive(a.app, a.base, raws)
      slow.add(away.sid)
      expect(await sockets.handOff(away.sid)).toBe(false)
      // Ended by then, not kept for a whole new window.
      expect(reasons.get(away.id)).toBe('transport close')
      expect(records.get(away.sid)?.close).toMatchObject({ reason: 'transport close' })
      expect(cluster.handOffSids).not.toContain(away.sid)
    } finally {
      for (const raw of raws) raw.close()
    }
  })

  it('ends a drain’s session as its window would, rather than finish here, when the window was spent while the store waited', async () => {
    const cluster = new Cluster({ handoff: true })
    const slow = new Set<string>()
    let entered = false
    let handled = 0
    let open: () => void = () => {}
    const gate = new Promise<void>((resolve) => {
      open = resolve
    })
    const { a, reasons, records } = await failingNode(
      cluster,
      { handoff: { timeout: 3000, retrySpread: 0 }, recovery: { window: 1000 } },
      { slow },
      (app) => {
        // The event the client sent before it went is in the middleware at the freeze (its
        // first pass only): the session has acknowledged it, and a drain that cannot store it
        // would run it here. Its window over, it is dropped, as a node that never drains drops
        // what waits in the middleware at that end.
        app.parley.on('connection', (socket) => {
          socket.use(async ([event]) => {
            if (event !== 'hold' || entered) return
            entered = true
            await gate
          })
          socket.on('hold', () => {
            handled++
          })
        })
      },
    )
    const raws: RawClient[] = []
    try {
      const away = await rawConnect('websocket', a.base)
      raws.push(away)
      await away.send({ type: PacketType.EVENT, seq: 1, name: 'hold', args: [], ackId: 0 })
      await until(() => entered, 3000, 'the event in the middleware')
      away.close()
      await until(
        () => a.app.parley.sockets.get(away.id)?.transport === null,
        3000,
        'the away transport gone',
      )
      slow.add(away.sid)
      await a.app.close()
      opened.letGo(a)
      expect(reasons.get(away.id)).toBe('transport close')
      expect(records.get(away.sid)?.close).toMatchObject({ reason: 'transport close' })
      expect(handled).toBe(0)
    } finally {
      open()
      for (const raw of raws) raw.close()
    }
  })
})
