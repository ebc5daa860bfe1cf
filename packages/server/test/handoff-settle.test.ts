// A session handed off that nobody claims in time has its tail sealed, for a claim that comes
// later. Before the server takes the session's last packets for that seal, the adapter gives the
// session what it still owes it (`Adapter.settleHandOff`): whatever reaches the socket then goes
// into the tail, not nowhere. A claim that comes meanwhile takes the session as any claim does.
// Real servers on the in-process test adapter (cluster-adapter.ts), whose `settling` stands in
// for what a store-backed adapter delivers then; the real client.
import { connect } from '@parley/client'
import { ErrorCode } from '@parley/protocol'
import type { Adapter, ServerSocket } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { Cluster } from './cluster-adapter.js'
import { handoffScene } from './handoff-scene.js'
import { type Started, sleep, startServer, until, within } from './helpers.js'
import { Registry, sampleOf } from './registry.js'

const opened = handoffScene()
const { nodes, clients } = opened

/** Nodes a and b on `cluster`, whose moves and drains wait 300 ms for a claim; sockets join 'room'. */
async function twoNodes(cluster: Cluster) {
  const list: {
    started: Started
    connections: ServerSocket[]
    ended: string[]
    registry: Registry
    /** What the server logged at warn or above. */
    log: string[]
  }[] = []
  for (const name of ['a', 'b']) {
    const node = {
      started: undefined as unknown as Started,
      connections: [] as ServerSocket[],
      ended: [] as string[],
      registry: new Registry(),
      log: [] as string[],
    }
    node.started = await startServer(
      {
        adapter: cluster.adapter(name),
        handoff: { timeout: 300, retrySpread: 0 },
        metrics: { registry: node.registry },
      },
      (app) => {
        app.parley.on('connection', (socket) => {
          node.connections.push(socket)
          void socket.join('room')
          socket.on('ask', () => {})
          socket.on('disconnect', (reason: string) => node.ended.push(reason))
        })
      },
      { logger: { level: 'warn', stream: { write: (line: string) => void node.log.push(line) } } },
    )
    nodes.push(node.started)
    list.push(node)
  }
  const [a, b] = list as [(typeof list)[0], (typeof list)[0]]
  // A client of a's, with a request a's handler never answers: open when the session leaves.
  const c = connect(a.started.base, { transports: ['websocket'], reconnection: false })
  clients.push(c)
  await until(() => c.connected && a.connections.length === 1, 3000, 'connected to a')
  const asked = c.timeout(20_000).emitWithAck('ask')
  asked.catch(() => {})
  await sleep(50)
  return { a, b, sid: a.connections[0]!.session.sid }
}

/** The events in `tail` named `name`, by their first argument. */
function eventsIn(tail: readonly string[], name: string): unknown[] {
  return tail.flatMap((text) => {
    const packet: unknown = JSON.parse(text)
    return Array.isArray(packet) && packet[2] === name && Array.isArray(packet[3]) ? [packet[3][0]] : []
  })
}

describe('the seal of a session nobody claimed', () => {
  it('holds what the adapter delivers as it settles a move, before the last packets', async () => {
    const cluster = new Cluster({ handoff: true })
    const { a, sid } = await twoNodes(cluster)
    let settled = 0
    cluster.settling = async (settling) => {
      if (settling !== sid) return
      settled++
      a.started.app.parley.to('room').emit('owed', 1)
      // The test adapter delivers a broadcast a turn later: done once it reached the socket.
      await new Promise((resolve) => setImmediate(resolve))
    }
    // b asks for the session; its claim never comes, and the move seals the tail at its timeout.
    const asking: Adapter = cluster.nodes.get('b')!
    expect(await within(asking.requestHandOff!('a', sid), 3000, 'the move stored')).toBe(true)
    await until(() => cluster.handoffs.get(sid)?.sealed === true, 3000, 'the tail sealed')

    const claim = await cluster.claim('b', sid)
    const { tail, late } = await within(
      claim!.takeOver(() => {}),
      3000,
      'the takeover',
    )
    expect(late).toBe(true)
    expect(settled).toBe(1)
    expect(eventsIn(tail, 'owed')).toEqual([1])
    // Before the last packets: the answer to the open request comes after it.
    const owed = tail.findIndex((text) => text.includes('"owed"'))
    const moved = tail.findIndex((text) => text.includes(ErrorCode.SESSION_MOVED))
    expect(owed).toBeGreaterThanOrEqual(0)
    expect(moved).toBeGreaterThan(owed)
  })

  it('gives the session to a claim that comes while the adapter settles a drain: its last packets go with it', async () => {
    const cluster = new Cluster({ handoff: true })
    const { a, sid } = await twoNodes(cluster)
    let tail: string[] | undefined
    cluster.settling = async (settling) => {
      if (settling !== sid) return
      a.started.app.parley.to('room').emit('owed', 1)
      // b claims the session now, before the adapter is done.
      const claim = await cluster.claim('b', sid)
      tail = (await claim!.takeOver(() => {})).tail
    }
    await within(a.started.app.close(), 5000, "a's drain")
    opened.letGo(a.started)

    expect(tail).toBeDefined()
    expect(eventsIn(tail ?? [], 'owed')).toEqual([1])
    // The claim ended the session here and took its answer to the open request, once.
    expect(tail?.filter((text) => text.includes(ErrorCode.SESSION_MOVED))).toHaveLength(1)
    expect(a.ended).toEqual(['server handoff'])
  })

  it('counts a session claimed while the adapter settles it as claimed, not unclaimed', async () => {
    const cluster = new Cluster({ handoff: true })
    const { a, sid } = await twoNodes(cluster)
    cluster.settling = async (settling) => {
      if (settling !== sid) return
      const claim = await cluster.claim('b', sid)
      await claim!.takeOver(() => {})
    }
    await within(a.started.app.close(), 5000, "a's drain")
    opened.letGo(a.started)

    const handoffs = (node: typeof a, outcome: string) =>
      sampleOf(node.registry, 'parley_handoffs_total', { outcome })
    expect(await handoffs(a, 'stored')).toBe(1)
    expect(await handoffs(a, 'unclaimed')).toBe(0)
    expect(a.ended).toEqual(['server handoff'])
    // Nor does the drain say it went unclaimed.
    expect(a.log.filter((line) => line.includes('were not claimed'))).toEqual([])
  })

  it('counts a moved session claimed while the adapter settles it as claimed, not unclaimed', async () => {
    const cluster = new Cluster({ handoff: true })
    const { a, sid } = await twoNodes(cluster)
    let claimed = false
    cluster.settling = async (settling) => {
      if (settling !== sid) return
      const claim = await cluster.claim('b', sid)
      await claim!.takeOver(() => {})
      claimed = true
    }
    const asking: Adapter = cluster.nodes.get('b')!
    expect(await within(asking.requestHandOff!('a', sid), 3000, 'the move stored')).toBe(true)
    await until(() => claimed && a.ended.length === 1, 3000, 'claimed as the move settled')

    expect(await sampleOf(a.registry, 'parley_handoffs_total', { outcome: 'stored' })).toBe(1)
    expect(await sampleOf(a.registry, 'parley_handoffs_total', { outcome: 'unclaimed' })).toBe(0)
  })
})
