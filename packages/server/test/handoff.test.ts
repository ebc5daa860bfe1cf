// Drain with handoff, on the Adapter contract: three Parley servers joined by the in-process
// test adapter (cluster-adapter.ts, whose store stands in for Redis) behind a round-robin proxy.
// A node closes while its clients send and receive numbered messages; they resume on the other
// nodes with nothing lost or repeated. The same runs on Redis in packages/redis and test/cluster.
import { connect, type Socket } from '@parley/client'
import type { TransportName } from '@parley/protocol'
import parley, { type ParleyServerOptions, type ServerSocket } from '@parley/server'
import Fastify from 'fastify'
import { Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { startRoundRobin } from '../../../test/support/round-robin.js'
import { Cluster } from './cluster-adapter.js'
import { handoffScene } from './handoff-scene.js'
import { type Started, sleep, startServer, until } from './helpers.js'

const opened = handoffScene()
const { nodes, clients } = opened

interface Node {
  started: Started
  connections: ServerSocket[]
  restored: ServerSocket[]
  /** What each socket id received, in order, on this node. */
  received: Map<string, number[]>
}

/** Per-socket handlers: record numbered `up` messages, answer `ask` requests, join a room. */
function setup(node: Node) {
  return (socket: ServerSocket) => {
    socket.on('up', (n: number) => {
      const list = node.received.get(socket.id) ?? []
      list.push(n)
      node.received.set(socket.id, list)
    })
    socket.on('ask', (n: number, reply: (v: number) => void) => reply(n * 2))
  }
}

async function threeNodes(
  cluster = new Cluster({ handoff: true }),
  options: ParleyServerOptions = { handoff: { timeout: 2000, retrySpread: 300 } },
) {
  const list: Node[] = []
  for (const name of ['a', 'b', 'c']) {
    const node: Node = {
      started: undefined as unknown as Started,
      connections: [],
      restored: [],
      received: new Map(),
    }
    node.started = await startServer(
      { adapter: cluster.adapter(name), ...options },
      (app) => {
        app.parley.on('connection', (socket) => {
          node.connections.push(socket)
          socket.data = { name: `user-${node.connections.length}` }
          void socket.join('everyone')
          setup(node)(socket)
        })
        app.parley.on('restored', (socket) => {
          node.restored.push(socket)
          setup(node)(socket)
        })
      },
      { return503OnClosing: false },
    )
    nodes.push(node.started)
    list.push(node)
  }
  const ports = list.map((n) => Number(new URL(n.started.base).port))
  const proxy = await startRoundRobin(ports)
  opened.proxy = proxy
  return { cluster, list, proxy, base: `${proxy.url}/parley` }
}

describe('drain with handoff', () => {
  for (const transport of ['websocket', 'sse', 'polling'] as TransportName[]) {
    it(`hands every session of a closing node to the others, nothing lost or repeated (${transport})`, async () => {
      const { list, base } = await threeNodes()
      const got: number[][] = []
      const events: string[][] = []
      for (let i = 0; i < 6; i++) {
        const c = connect(base, { transports: [transport] })
        clients.push(c)
        const mine: number[] = []
        const seen: string[] = []
        got.push(mine)
        events.push(seen)
        c.on('down', (n: number) => mine.push(n))
        c.on('disconnect', (reason: string) => seen.push(`disconnect ${reason}`))
        c.on('connect', () => seen.push('connect'))
        await until(() => c.connected, 3000, 'connect')
      }
      const victim = list.find((n) => n.connections.length > 0)!
      const others = list.filter((n) => n !== victim)
      const movedIds = new Set(victim.connections.map((s) => s.id))
      // Steady traffic both ways while the victim drains.
      let up = 0
      let down = 0
      const app = victim.started.app
      const traffic = setInterval(() => {
        up++
        for (const c of clients) c.emit('up', up)
        down++
        for (const n of list) if (!n.started.app.parley.closing) n.started.app.parley.local.emit('down', down)
      }, 5)
      await sleep(100)
      await app.close()
      // The balancer's health check takes the stopped node out.
      opened.proxy!.avoid.add(list.indexOf(victim))
      opened.letGo(victim.started)
      const restored = (id: string) => others.some((n) => n.restored.some((s) => s.id === id))
      await until(() => [...movedIds].every(restored), 5000, 'restored')
      await sleep(100)
      clearInterval(traffic)
      await until(() => clients.every((c) => c.connected), 10_000, 'all connected')
      // Everything each client sent arrived once, in order, across the nodes it lived on. A
      // polling client's last POSTs may still be on their way on a loaded machine: wait for the
      // count, then a little longer for anything sent twice.
      const received = (id: string) => list.flatMap((n) => n.received.get(id) ?? [])
      await until(() => clients.every((c) => received(c.id!).length >= up), 10_000, 'every up arrived')
      await sleep(200)
      for (const [k, c] of clients.entries()) {
        const id = c.id!
        const seen = received(id)
        expect(seen, `client ${k}`).toEqual(Array.from({ length: up }, (_, i) => i + 1))
        expect(events[k]).toEqual(['connect'])
        expect(c.recovered || !movedIds.has(id)).toBe(true)
      }
      // Restored sockets kept their data and rooms. (A WebSocket resume that reached the draining
      // node was relayed to a live node, which claimed its session; when the relay ended with the
      // node, the client resumed on the node the balancer chose, which may have moved the session
      // once more: only the last of its sockets is connected.)
      for (const n of others) {
        for (const s of n.restored.filter((restored) => restored.connected)) {
          expect(movedIds.has(s.id)).toBe(true)
          expect((s.data as { name: string }).name).toMatch(/^user-/)
          expect(s.rooms.has('everyone')).toBe(true)
        }
      }
      // Broadcasts reached every client once, in order (each node's local emit has its own
      // counter value, so each client sees increasing numbers without repeats).
      for (const mine of got) {
        expect(mine.length).toBeGreaterThan(0)
        expect(new Set(mine).size).toBe(mine.length)
      }
    }, 45_000)
  }

  for (const transport of ['websocket', 'sse', 'polling'] as TransportName[]) {
    it(`keeps a client patient while a slow store takes its session, then hands it off unseen (${transport})`, async () => {
      const cluster = new Cluster({ handoff: true })
      // The client gives up after pingInterval + pingTimeout (600 ms) without a PING; the store
      // takes three times that, during which the session is frozen and reads nothing.
      cluster.storeDelayMs = 1800
      const { list, base } = await threeNodes(cluster, {
        pingInterval: 300,
        pingTimeout: 300,
        handoff: { timeout: 4000, retrySpread: 100 },
      })
      const c = connect(base, { transports: [transport] })
      clients.push(c)
      const events: string[] = []
      c.on('disconnect', (reason: string) => events.push(`disconnect ${reason}`))
      c.on('connect', () => events.push('connect'))
      await until(() => c.connected, 3000, 'connect')
      const id = c.id
      const owner = list.find((n) => n.connections.some((s) => s.id === id))!
      await owner.started.app.close()
      opened.proxy!.avoid.add(list.indexOf(owner))
      opened.letGo(owner.started)
      await until(() => list.some((n) => n.restored.some((s) => s.id === id)), 5000, 'restored')
      await until(() => c.connected, 3000, 'connected again')
      expect(events).toEqual(['connect'])
      expect(c.id).toBe(id)
      expect(c.recovered).toBe(true)
      expect(await c.timeout(2000).emitWithAck('ask', 21)).toBe(42)
    })
  }

  it('seals at once when no other node is alive, and the node that starts after it takes the sessions over', async () => {
    const cluster = new Cluster({ handoff: true })
    // A timeout the test would not outlast: the drain must not wait for it.
    const handoff = { timeout: 30_000, retrySpread: 0 }
    const fastifyOptions = { return503OnClosing: false, pluginTimeout: 60_000 }
    const answer = (socket: ServerSocket) =>
      socket.on('ask', (n: number, reply: (v: number) => void) => reply(n * 2))
    const a = await startServer(
      { adapter: cluster.adapter('a'), handoff },
      (app) => {
        app.parley.on('connection', answer)
      },
      fastifyOptions,
    )
    nodes.push(a)
    const many: Socket[] = []
    const events: string[] = []
    for (let i = 0; i < 3; i++) {
      const c = connect(a.base, { transports: ['websocket'], reconnectionDelayMax: 300 })
      clients.push(c)
      many.push(c)
      c.on('disconnect', (reason: string) => events.push(`disconnect ${reason}`))
      c.on('connect', () => events.push('connect'))
      await until(() => c.connected)
    }
    const ids = many.map((c) => c.id)

    const closed = a.app.close().then(() => 'closed')
    expect(await Promise.race([closed, sleep(10_000).then(() => 'still waiting for a claim')])).toBe('closed')
    opened.letGo(a)
    for (const sid of cluster.handOffSids) {
      const stored = cluster.handoffs.get(sid)
      expect(stored?.sealed).toBe(true)
      expect(stored?.claimedBy).toBeUndefined()
    }

    // The only node starts again on the same address, as a deployment of one node restarts.
    const logs: string[] = []
    const logger = { level: 'info', stream: { write: (line: string) => void logs.push(line) } }
    const b = Fastify({ forceCloseConnections: true, ...fastifyOptions, logger })
    const restored: ServerSocket[] = []
    const registry = new Registry()
    await b.register(parley, { adapter: cluster.adapter('b'), handoff, metrics: { registry } })
    b.parley.on('restored', (socket) => {
      restored.push(socket)
      answer(socket)
    })
    await b.listen({ port: Number(new URL(a.base).port), host: '127.0.0.1' })
    const restarted: Started = { app: b, base: a.base }
    nodes.push(restarted)
    await until(() => many.every((c) => c.connected) && restored.length === 3, 10_000, 'taken over')
    expect(events).toEqual(['connect', 'connect', 'connect'])
    expect(many.map((c) => c.id)).toEqual(ids)
    for (const c of many) {
      expect(c.recovered).toBe(true)
      expect(await c.timeout(2000).emitWithAck('ask', 21)).toBe(42)
    }
    // Counted and logged as a restart, not as a client that came back after handoff.timeout:
    // raising that timeout would not have helped.
    const counted = await registry.getSingleMetric('parley_handoffs_total')?.get()
    expect(counted?.values.map(({ labels, value }) => [labels.outcome, value])).toEqual([['restarted', 3]])
    expect(logs.filter((line) => line.includes('handoff.timeout'))).toEqual([])
    // One line for the first claim at once, not one per session: a node restarted with 10 000
    // sessions would write 10 000. The rest are counted in the next line (here, at close).
    const restarts = () =>
      logs
        .filter((line) => line.includes('claimed after a restart'))
        .map((line) => JSON.parse(line) as { count: number; total: number })
    expect(restarts()).toMatchObject([{ count: 1, total: 1 }])
    for (const c of clients.splice(0)) c.disconnect()
    await sleep(50)
    await b.close()
    opened.letGo(restarted)
    expect(restarts()).toMatchObject([
      { count: 1, total: 1 },
      { count: 2, total: 3 },
    ])
  }, 35_000)

  it('ends sessions as before when the store is unreachable during the drain', async () => {
    const cluster = new Cluster({ handoff: true })
    const { list, base } = await threeNodes(cluster)
    const c = connect(base, { transports: ['websocket'] })
    clients.push(c)
    const reasons: string[] = []
    c.on('disconnect', (reason: string) => reasons.push(reason))
    await until(() => c.connected)
    const owner = list.find((n) => n.connections.length > 0)!
    cluster.storeUp = false
    await owner.started.app.close()
    opened.proxy!.avoid.add(list.indexOf(owner))
    opened.letGo(owner.started)
    await until(() => reasons.length > 0)
    expect(reasons).toEqual(['server shutdown'])
    await until(() => c.connected, 5000)
    expect(c.recovered).toBe(false)
  })
})
