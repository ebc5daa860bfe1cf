// A session that ends on its draining node after its snapshot was stored for handoff: the
// application disconnects it, or its tail passes maxBufferedBytes. The application there saw it
// end, so it must have no second life: the snapshot is withdrawn, and the client's resume on
// another node gets a new session (recovered: false), never a `restored` one; so too when a
// store writes the snapshot only after the drain stopped waiting for it. One that ends on the
// node taking it over, before the cut, is put in no room there. Two real servers joined by the
// in-process test adapter (its store stands in for Redis), a round-robin proxy, and the real
// client. The same against Redis: packages/redis/test/handoff-withdraw.test.ts.
import { connect } from '@parley/client'
import type { ParleyServerOptions, ServerSocket } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { startRoundRobin } from '../../../test/support/round-robin.js'
import { Cluster } from './cluster-adapter.js'
import { Gate } from './gated-adapter.js'
import { handoffScene } from './handoff-scene.js'
import { type Started, startServer, until } from './helpers.js'

const opened = handoffScene()
const { nodes: started, clients } = opened

/** Short, so that the drain of the old node ends fast. */
const OPTIONS: ParleyServerOptions = { handoff: { timeout: 2000, retrySpread: 0 } }

interface Node {
  started: Started
  connections: ServerSocket[]
  restored: ServerSocket[]
  disconnects: string[]
}

/** Nodes a and b on one store, behind a round-robin proxy; a client connected to a. */
async function setup(store: Cluster, options: { a?: ParleyServerOptions } = {}) {
  const nodes: Node[] = []
  for (const name of ['a', 'b'] as const) {
    const node: Node = {
      started: undefined as unknown as Started,
      connections: [],
      restored: [],
      disconnects: [],
    }
    const own = name === 'a' ? options.a : undefined
    node.started = await startServer({ adapter: store.adapter(name), ...OPTIONS, ...own }, (app) => {
      app.parley.on('connection', (socket) => {
        node.connections.push(socket)
        socket.on('disconnect', (reason) => node.disconnects.push(reason))
      })
      app.parley.on('restored', (socket) => node.restored.push(socket))
    })
    started.push(node.started)
    nodes.push(node)
  }
  const ports = nodes.map((n) => Number(new URL(n.started.base).port))
  const proxy = await startRoundRobin(ports)
  opened.proxy = proxy
  const c = connect(`${proxy.url}/parley`, { transports: ['websocket'], autoConnect: false })
  clients.push(c)
  proxy.avoid.add(1)
  c.connect()
  await until(() => c.connected, 3000, 'connect to a')
  proxy.avoid.clear()
  const [a, b] = nodes as [Node, Node]
  return { a, b, c, first: c.id! }
}

/** Starts closing node `a` (its drain hands its sessions off); the balancer skips it from now. */
function drain(a: Node): Promise<void> {
  opened.proxy!.avoid.add(0)
  const closed = a.started.app.close()
  opened.letGo(a.started)
  return closed
}

const stored = (store: Cluster) => [...store.handoffs.values()].some((h) => h.stored)

describe('a session that ends on its draining node after its snapshot was stored', () => {
  it('is not claimed when the application disconnects it: the client gets a new session', async () => {
    const store = new Cluster({ handoff: true })
    // The client's claim comes well after the disconnect below.
    store.claimDelayMs = 300
    const { a, b, c, first } = await setup(store)
    const closing = drain(a)
    await until(() => stored(store), 3000, 'snapshot stored')
    a.connections[0]!.disconnect()
    expect(a.disconnects).toEqual(['server disconnect'])
    await until(() => c.connected && c.id !== first, 5000, 'a new session on b')
    await closing
    expect(c.recovered).toBe(false)
    expect(b.restored).toEqual([])
    expect(b.connections.map((s) => [s.id, s.recovered])).toEqual([[c.id, false]])
    expect(store.handoffs.size).toBe(0)
  })

  it('is not claimed when its tail passes maxBufferedBytes', async () => {
    const store = new Cluster({ handoff: true })
    store.claimDelayMs = 300
    // Lower on a than on b (a limit being rolled out): b would take the tail a gave up on.
    const { a, b, c, first } = await setup(store, { a: { maxBufferedBytes: 64 * 1024 } })
    const closing = drain(a)
    await until(() => stored(store), 3000, 'snapshot stored')
    // The client is gone from this node: what it is sent goes to the tail and is kept for it.
    const old = a.connections[0]!
    for (let i = 0; i < 10 && old.connected; i++) old.emit('big', 'x'.repeat(16 * 1024))
    expect(a.disconnects).toEqual(['slow consumer'])
    await until(() => c.connected && c.id !== first, 5000, 'a new session on b')
    await closing
    expect(c.recovered).toBe(false)
    expect(b.restored).toEqual([])
    expect(b.connections.map((s) => s.recovered)).toEqual([false])
  })

  it('is dropped by a node whose claim won just before: the client gets a new session there', async () => {
    const store = new Cluster({ handoff: true })
    // The claim wins, then waits before its cut: the session ends on a meanwhile.
    store.takeOverDelayMs = 300
    const { a, b, c, first } = await setup(store)
    const closing = drain(a)
    await until(() => [...store.handoffs.values()].some((h) => h.claimedBy === 'b'), 5000, 'claimed by b')
    a.connections[0]!.disconnect()
    await until(() => c.connected && c.id !== first, 5000, 'a new session on b')
    await closing
    expect(c.recovered).toBe(false)
    expect(b.restored).toEqual([])
    expect(b.connections.map((s) => [s.id, s.recovered])).toEqual([[c.id, false]])
    expect(b.started.app.parley.sockets.size).toBe(1)
  })

  it.each([
    ['only after the drain gave up on it', false],
    ['after the drain gave up on it, then rejects', true],
  ])('is not claimable when the store writes it %s', async (_, rejects) => {
    const store = new Cluster({ handoff: true })
    // Slower than a's handoff.timeout (it finishes once the drain gave up on it), and written
    // only at its end: the withdraw made when the session ended (server shutdown) finds nothing
    // to take back yet. With `rejects`, its reply is lost after the write: the answer that comes
    // says neither stored nor not.
    store.storeWritesLast = true
    let finish = () => {}
    store.storeFinishesAfter = new Promise((resolve) => {
      finish = resolve
    })
    store.storeRejects = rejects
    const { a, b, c, first } = await setup(store, { a: { handoff: { timeout: 1000, retrySpread: 0 } } })
    const closing = drain(a)
    await until(() => a.disconnects.length === 1 && store.withdrawals > 0, 5000, 'the drain gave up')
    expect(store.handOffsAnswered).toBe(0)
    finish()
    await until(() => store.handOffsAnswered === 1, 5000, 'the late answer of the store')
    await closing
    expect(a.disconnects).toEqual(['server shutdown'])
    // The application on a saw it end: no node may bring it back.
    const [sid] = store.handOffSids
    expect(await store.claim('b', sid!)).toBeNull()
    expect(store.handoffs.size).toBe(0)
    await until(() => c.connected && c.id !== first, 5000, 'a new session on b')
    expect(c.recovered).toBe(false)
    expect(b.restored).toEqual([])
  })

  it('is not claimable when it ends while the store is still writing it', async () => {
    const store = new Cluster({ handoff: true })
    // Written only at the end of the write (which finishes once the withdraw made at the
    // disconnect was made): that withdraw finds nothing yet.
    store.storeWritesLast = true
    let finish = () => {}
    store.storeFinishesAfter = new Promise((resolve) => {
      finish = resolve
    })
    const { a, b, c } = await setup(store)
    const closing = drain(a)
    await until(() => store.handOffSids.length === 1, 3000, 'the write under way')
    a.connections[0]!.disconnect()
    expect(store.handOffsAnswered).toBe(0)
    await until(() => store.withdrawals > 0, 3000, 'the withdraw')
    finish()
    await until(() => store.handOffsAnswered === 1, 5000, 'the answer of the store')
    await closing
    expect(a.disconnects).toEqual(['server disconnect'])
    const [sid] = store.handOffSids
    expect(await store.claim('b', sid!)).toBeNull()
    expect(store.handoffs.size).toBe(0)
    // Told its session ended (it was not told to resume yet): it does not come back.
    expect(c.connected).toBe(false)
    expect(b.restored).toEqual([])
  })

  it('leaves no room behind on a node whose claim won just before, with an adapter slow to join', async () => {
    const store = new Cluster({ handoff: true })
    store.takeOverDelayMs = 300
    const { a, b, c, first } = await setup(store)
    // b puts the socket it takes over into its rooms only after its takeover dropped it.
    store.joinDelayMs = 200
    const closing = drain(a)
    await until(() => [...store.handoffs.values()].some((h) => h.claimedBy === 'b'), 5000, 'claimed by b')
    a.connections[0]!.disconnect()
    await until(() => c.connected && c.id !== first, 5000, 'a new session on b')
    await until(() => store.slowJoins.includes(first), 5000, 'the join of the dropped socket')
    await closing
    expect(b.restored).toEqual([])
    expect(store.nodes.get('b')!.memory.socketRooms(first)).toBeUndefined()
  })

  it('is still handed off when it ends only after the claim (by the move itself)', async () => {
    const store = new Cluster({ handoff: true })
    const { a, b, c, first } = await setup(store)
    await drain(a)
    await until(() => b.restored.length === 1 && c.connected, 5000, 'restored on b')
    expect(c.id).toBe(first)
    expect(c.recovered).toBe(true)
    expect(a.disconnects).toEqual(['server handoff'])
    expect(store.withdrawals).toBe(0)
  })
})

describe('a session taken over with an adapter slow to join', () => {
  it('leaves no room behind on the node that took it over and ended it before its join was done', async () => {
    const store = new Cluster({ handoff: true })
    const { a, b, first } = await setup(store)
    // b puts the socket it takes over into its rooms only after its application ended it.
    store.joinDelayMs = 200
    b.started.app.parley.on('restored', (socket) => socket.disconnect())
    const closing = drain(a)
    await until(() => b.restored.length === 1, 5000, 'restored on b')
    await until(() => store.slowJoins.includes(first), 5000, 'the join of the restored socket')
    await closing
    expect(b.restored[0]!.connected).toBe(false)
    expect(store.nodes.get('b')!.memory.socketRooms(first)).toBeUndefined()
  })
})

describe('a session that ends on the node taking it over, before the cut', () => {
  it('joins no room there: its end came first, and the cut puts it back in none', async () => {
    const store = new Cluster({ handoff: true })
    store.holdTakeOvers = true
    const { a, b, c, first } = await setup(store)
    a.connections[0]!.join('lobby')
    // b's joins and leaves, as it makes them (its joins are held: none should come).
    const gate = new Gate()
    store.nodes.get('b')!.gate = gate
    const events: string[] = []
    c.on('disconnect', (reason) => events.push(`disconnect ${reason}`))
    const closing = drain(a)
    await until(() => store.heldTakeOvers.length === 1, 5000, "b's takeover at its cut")
    // The application on b ends the session while its takeover waits for the old node's tail
    // (the socket is in app.parley.sockets from its middleware on).
    b.started.app.parley.sockets.get(first)!.disconnect()
    store.heldTakeOvers[0]!()
    await until(() => events.length > 0, 5000, "the client told of the session's end")
    await closing
    expect(events).toEqual(['disconnect server disconnect'])
    // Out of its rooms at its end (none yet), and no join after it.
    expect(gate.calls).toEqual(['leave all'])
    expect(gate.held).toEqual([])
    expect(store.nodes.get('b')!.memory.socketRooms(first)).toBeUndefined()
    expect(b.restored).toEqual([])
  })
})
