// Adoption, on the Adapter contract (the in-process cluster adapter of cluster-adapter.ts): at
// the end of a drain's wait, the sessions nobody claimed (their clients away) are asked of the
// live nodes in turn, one request per node, and each is claimed and kept there for its client.
// The same runs end to end on Redis in packages/redis/test/adoption.test.ts.
import { connect, type Socket } from '@parley/client'
import type { ServerSocket } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { revoked, trapsThrow } from '../../../test/support/odd-values.js'
import { type RoundRobinProxy, startRoundRobin } from '../../../test/support/round-robin.js'
import type { Adapter } from '../src/adapter/adapter.js'
import { ADOPT_CLAIM_BATCH, ADOPT_CLAIMS_AT_ONCE } from '../src/arrivals.js'
import { Cluster } from './cluster-adapter.js'
import { handoffScene } from './handoff-scene.js'
import { type Started, sleep, startServer, until } from './helpers.js'
import { rawConnect } from './raw-client.js'
import { Registry, sampleOf } from './registry.js'

const opened = handoffScene()
const { nodes, clients } = opened

interface Node {
  name: string
  started: Started
  registry: Registry
  restored: ServerSocket[]
}

async function scene(names: string[], options: { adopts?: boolean } = {}) {
  const cluster = new Cluster({ handoff: true, adopts: options.adopts ?? true })
  const list: Node[] = []
  for (const name of names) {
    const registry = new Registry()
    const node: Node = { name, started: undefined as unknown as Started, registry, restored: [] }
    node.started = await startServer(
      {
        adapter: cluster.adapter(name),
        handoff: { timeout: 400, retrySpread: 0 },
        metrics: { registry },
      },
      (app) => {
        app.parley.on('connection', (socket) => void socket.join('room'))
        app.parley.on('restored', (socket) => void node.restored.push(socket))
      },
      { return503OnClosing: false },
    )
    nodes.push(node.started)
    list.push(node)
  }
  // Every client on the first node: the others only take sessions over.
  const proxy = await startRoundRobin([Number(new URL(list[0]!.started.base).port)])
  opened.proxy = proxy
  return { cluster, list, proxy }
}

/** `count` WebSocket clients through the proxy, connected, in the room. */
async function clientsOf(proxy: RoundRobinProxy, count: number): Promise<Socket[]> {
  const made: Socket[] = []
  for (let i = 0; i < count; i++) {
    const c = connect(`${proxy.url}/parley`, { transports: ['websocket'] })
    clients.push(c)
    made.push(c)
    await until(() => c.connected, 3000, 'connect')
  }
  return made
}

/**
 * `count` clients on the first node, which then goes away from them (the balancer offline, their
 * connections cut) and closes: its drain hands their sessions off, nobody claims them, and it asks
 * the live nodes to adopt them. Their ids.
 */
async function drainedWithClientsAway(proxy: RoundRobinProxy, first: Node, count: number): Promise<string[]> {
  const away = await clientsOf(proxy, count)
  proxy.offline = true
  proxy.cut()
  await sleep(100)
  await first.started.app.close()
  opened.letGo(first.started)
  return away.map((s) => s.id!)
}

/**
 * Nodes a and b, a client of a's gone away (its balancer offline), and a's drain begun: its
 * session stored, the drain waiting for a claim that will not come from its client. A real sid to
 * ask b to adopt with.
 */
async function drainingWithClientAway() {
  const { cluster, list, proxy } = await scene(['a', 'b'])
  const [a, b] = list as [Node, Node]
  await clientsOf(proxy, 1)
  proxy.offline = true
  proxy.cut()
  await sleep(100)
  const draining = a.started.app.close()
  await until(() => cluster.handoffs.get(cluster.handOffSids[0] ?? '')?.stored === true, 3000, 'stored')
  return { cluster, a, b, draining, sid: cluster.handOffSids[0]! }
}

describe('drain with handoff: adoption', () => {
  it('spreads the sessions nobody claimed over the live nodes in turn, one ask per node, each kept there', async () => {
    const { cluster, list, proxy } = await scene(['a', 'b', 'c'])
    const [a, b, c] = list as [Node, Node, Node]
    const ids = await drainedWithClientsAway(proxy, a, 4)
    expect(cluster.adoptionAsks.map((ask) => ask.node).sort()).toEqual(['b', 'c'])
    expect(cluster.adoptionAsks.map((ask) => ask.sids.length)).toEqual([2, 2])
    const adopted = [...b.restored, ...c.restored]
    expect(adopted.map((s) => s.id).sort()).toEqual([...ids].sort())
    expect(b.restored).toHaveLength(2)
    expect(c.restored).toHaveLength(2)
    // Kept for their clients, in their rooms, no client attached.
    for (const s of adopted) {
      expect(s.connected).toBe(true)
      expect(s.rooms.has('room')).toBe(true)
    }
    // Counted once each: stored by the draining node (not unclaimed), adopted where they went.
    expect(await sampleOf(a.registry, 'parley_handoffs_total', { outcome: 'stored' })).toBe(4)
    expect(await sampleOf(a.registry, 'parley_handoffs_total', { outcome: 'unclaimed' })).toBe(0)
    expect(await sampleOf(b.registry, 'parley_handoffs_total', { outcome: 'adopted' })).toBe(2)
    expect(await sampleOf(c.registry, 'parley_handoffs_total', { outcome: 'adopted' })).toBe(2)
    expect(await sampleOf(b.registry, 'parley_handoffs_total', { outcome: 'taken' })).toBe(0)
  })

  it('asks another live node for the share of a node that does not say it took the request', async () => {
    const { cluster, list, proxy } = await scene(['a', 'b', 'c'])
    const [a, b, c] = list as [Node, Node, Node]
    // c is in the live set but stuck: it never answers, nor says it took its share.
    cluster.silent.add('c')
    const ids = await drainedWithClientsAway(proxy, a, 4)
    const [first, second, again] = cluster.adoptionAsks
    expect(cluster.adoptionAsks).toHaveLength(3)
    expect([first?.node, second?.node].sort()).toEqual(['b', 'c'])
    // c's share, and only it, asked again: of b, which said it took its own.
    const cShare = [first, second].find((ask) => ask?.node === 'c')?.sids
    expect(again).toEqual({ node: 'b', sids: cShare })
    expect(b.restored.map((s) => s.id).sort()).toEqual([...ids].sort())
    expect(c.restored).toEqual([])
    expect(await sampleOf(a.registry, 'parley_handoffs_total', { outcome: 'unclaimed' })).toBe(0)
    expect(await sampleOf(b.registry, 'parley_handoffs_total', { outcome: 'adopted' })).toBe(4)
  })

  it('asks a node that adopted for the share of a node that said it took the request, then adopted none', async () => {
    const { cluster, list, proxy } = await scene(['a', 'b', 'c'])
    const [a, b, c] = list as [Node, Node, Node]
    // b began to close after it was listed: it says it took its share, and adopts none of it.
    cluster.refusing.add('b')
    const ids = await drainedWithClientsAway(proxy, a, 4)
    const [first, second, again] = cluster.adoptionAsks
    expect(cluster.adoptionAsks).toHaveLength(3)
    const bShare = [first, second].find((ask) => ask?.node === 'b')?.sids
    expect(again).toEqual({ node: 'c', sids: bShare })
    expect(c.restored.map((s) => s.id).sort()).toEqual([...ids].sort())
    expect(b.restored).toEqual([])
    expect(await sampleOf(a.registry, 'parley_handoffs_total', { outcome: 'unclaimed' })).toBe(0)
  })

  it('asks a session again once at most: nodes that all adopt none pass nothing back and forth', async () => {
    const { cluster, list, proxy } = await scene(['a', 'b', 'c'])
    const [a] = list as [Node, Node, Node]
    cluster.refusing.add('b')
    cluster.refusing.add('c')
    await drainedWithClientsAway(proxy, a, 4)
    const times = new Map<string, number>()
    for (const ask of cluster.adoptionAsks)
      for (const sid of ask.sids) times.set(sid, (times.get(sid) ?? 0) + 1)
    expect(times.size).toBe(4)
    for (const count of times.values()) expect(count).toBe(1)
    expect(await sampleOf(a.registry, 'parley_handoffs_total', { outcome: 'unclaimed' })).toBe(4)
  })

  it('seals the share of a node that does not say it took the request when no other node is there to ask', async () => {
    const { cluster, list, proxy } = await scene(['a', 'c'])
    const [a, c] = list as [Node, Node]
    cluster.silent.add('c')
    await drainedWithClientsAway(proxy, a, 1)
    expect(cluster.adoptionAsks.map((ask) => ask.node)).toEqual(['c'])
    expect(c.restored).toEqual([])
    expect(await sampleOf(a.registry, 'parley_handoffs_total', { outcome: 'unclaimed' })).toBe(1)
  })

  it('claims at most ADOPT_CLAIMS_AT_ONCE at a time, in the order asked, every one', async () => {
    const { cluster } = await scene(['a', 'b'])
    cluster.claimDelayMs = 2
    // Sessions nobody stored: each claim finds nothing, but is made, and counted while it runs.
    const asked = Array.from({ length: 3 * ADOPT_CLAIMS_AT_ONCE + 7 }, (_, i) => `nobody-${i}`)
    const adopt = cluster.nodes.get('b')!.sockets.adopt!
    expect(await adopt(asked.map((sid) => ({ sid, params: {}, left: 5000 })))).toBe(0)
    expect(cluster.claimed).toEqual(asked)
    expect(cluster.claimsAtOnce.most).toBe(ADOPT_CLAIMS_AT_ONCE)
  })

  it('claims through claimSessions when the adapter has it: in batches, in the order asked, at most ADOPT_CLAIMS_AT_ONCE under way', async () => {
    const { cluster } = await scene(['a', 'b'])
    cluster.claimDelayMs = 2
    const node = cluster.nodes.get('b')!
    const adapter: Adapter = node
    // Each batch claimed through the adapter's own claims, as one call.
    const batches: string[][] = []
    adapter.claimSessions = (sessions) => {
      batches.push(sessions.map(({ sid }) => sid))
      return Promise.all(sessions.map(({ sid }) => adapter.claimSession!(sid)))
    }
    const asked = Array.from({ length: 3 * ADOPT_CLAIMS_AT_ONCE + 7 }, (_, i) => `nobody-${i}`)
    expect(await node.sockets.adopt!(asked.map((sid) => ({ sid, params: {}, left: 5000 })))).toBe(0)
    expect(batches.flat()).toEqual(asked)
    expect(batches.map((batch) => batch.length)).toEqual([...Array(6).fill(ADOPT_CLAIM_BATCH), 7])
    expect(cluster.claimsAtOnce.most).toBe(ADOPT_CLAIMS_AT_ONCE)
  })

  it('adopts none of a batch whose claimSessions rejects, and goes on with the next', async () => {
    const { cluster, a, b, draining, sid } = await drainingWithClientAway()
    const node = cluster.nodes.get('b')!
    const adapter: Adapter = node
    let calls = 0
    adapter.claimSessions = async (sessions) => {
      if (calls++ === 0) throw new Error('the store failed')
      return Promise.all(sessions.map((session) => adapter.claimSession!(session.sid)))
    }
    const nobody = Array.from({ length: ADOPT_CLAIM_BATCH }, (_, i) => ({
      sid: `nobody-${i}`,
      params: {},
      left: 5000,
    }))
    // The first batch (nobody's) fails; the second, a's session, is adopted.
    expect(await node.sockets.adopt!([...nobody, { sid, params: {}, left: 5000 }])).toBe(1)
    expect(calls).toBe(2)
    expect(b.restored).toHaveLength(1)
    await draining
    expect(await sampleOf(a.registry, 'parley_handoffs_total', { outcome: 'unclaimed' })).toBe(0)
  })

  it('starts no claim past the time the draining node waits', async () => {
    const { cluster, a, b, draining, sid } = await drainingWithClientAway()
    const before = cluster.claimed.length
    const adopt = cluster.nodes.get('b')!.sockets.adopt!
    expect(await adopt([{ sid, params: {}, left: 5000 }], 0)).toBe(0)
    expect(cluster.claimed.length).toBe(before)
    expect(cluster.handoffs.get(sid)?.claimedBy).toBeUndefined()
    await draining
    opened.letGo(a.started)
    // Asked by the drain itself, with the time it still waits: adopted.
    expect(b.restored).toHaveLength(1)
  })

  it('seals as before with an adapter that cannot ask for adoption', async () => {
    const { cluster, list, proxy } = await scene(['a', 'b'], { adopts: false })
    const [a, b] = list as [Node, Node]
    await drainedWithClientsAway(proxy, a, 1)
    expect(cluster.adoptionAsks).toEqual([])
    expect(b.restored).toEqual([])
    expect(await sampleOf(a.registry, 'parley_handoffs_total', { outcome: 'unclaimed' })).toBe(1)
  })

  it('adopts nothing on a node that is closing: the draining node seals the session as before', async () => {
    const { cluster, a, b, draining, sid } = await drainingWithClientAway()
    const closing = b.started.app.close()
    await until(() => b.started.app.parley.closing, 3000, 'closing')
    const adopted = await cluster.nodes.get('b')!.sockets.adopt!([{ sid, params: {}, left: 5000 }])
    expect(adopted).toBe(0)
    // Not claimed: still there for its client.
    expect(cluster.handoffs.get(sid)?.claimedBy).toBeUndefined()
    await Promise.all([draining, closing])
    nodes.length = 0
    expect(b.restored).toEqual([])
    expect(await sampleOf(a.registry, 'parley_handoffs_total', { outcome: 'unclaimed' })).toBe(1)
  })

  it('adopts nothing for what is no adoption, and never throws on it', async () => {
    const { cluster, a, b, draining, sid } = await drainingWithClientAway()
    const adopt = cluster.nodes.get('b')!.sockets.adopt!
    for (const junk of [
      null,
      'sessions',
      [null],
      ['sid'],
      [{ sid: 7, params: {}, left: 5000 }],
      [{ sid: '', params: {}, left: 5000 }],
      [{ sid, params: {}, left: Number.NaN }],
      [{ sid, params: {}, left: 0 }],
      [{ sid, params: {}, left: '5000' }],
      // Entries that throw as they are read: each adopts nothing, and the call still answers.
      [trapsThrow()],
      [revoked()],
    ])
      expect(await adopt(junk as never)).toBe(0)
    expect(cluster.handoffs.get(sid)?.claimedBy).toBeUndefined()
    await draining
    opened.letGo(a.started)
    expect(b.restored).toHaveLength(1)
  })

  it('keeps an adopted session for what was left of its client’s window when asked, less the time its claim and takeover took', async () => {
    const cluster = new Cluster({ handoff: true, adopts: true })
    // A second for the adoption (ADOPT_WAIT_MS), most of it the claim's and the takeover's.
    cluster.claimDelayMs = 400
    cluster.takeOverDelayMs = 300
    const started: Started[] = []
    for (const name of ['a', 'b']) {
      const node = await startServer({
        adapter: cluster.adapter(name),
        handoff: { timeout: 4000, retrySpread: 0 },
        recovery: { window: 60_000 },
      })
      nodes.push(node)
      started.push(node)
    }
    const [a, b] = started as [Started, Started]
    const away = await rawConnect('websocket', a.base)
    away.close()
    await until(() => a.app.parley.sockets.get(away.id)?.transport === null, 3000, 'the transport gone')
    await a.app.close()
    opened.letGo(a)
    expect(b.app.parley.sockets.get(away.id)?.transport).toBe(null)
    const asked = cluster.adoptionLefts.get(away.sid) ?? 0
    expect(asked).toBeGreaterThan(0)
    // How long b keeps it, read where b hands it on: its own drain stores it for what is left.
    void b.app.parley.drain()
    const byB = () => cluster.handOffSids.filter((sid) => sid === away.sid).length === 2
    await until(byB, 5000, "b's drain to hand the session on")
    const took = cluster.claimDelayMs + cluster.takeOverDelayMs
    expect(cluster.handOffTtls.get(away.sid)).toBeLessThanOrEqual(asked - took)
  }, 15_000)
})
