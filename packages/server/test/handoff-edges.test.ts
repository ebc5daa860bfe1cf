// Drain with handoff at its edges, on the Adapter contract: real servers joined by the
// in-process test adapter (its store stands in for Redis) behind a round-robin proxy, and the
// real client. Two drains at once, a client that comes back to the draining node, acks and
// requests that straddle the handoff, events held by middleware, socket.data that is not JSON,
// rooms and broadcasts during the drain, joins and leaves still under way at it. The option
// checks and the unit tests are elsewhere (options in handoff-options.test.ts; Session in
// src/session.test.ts; jsonCopy in src/json-copy.test.ts).
import { connect, type Socket } from '@parley/client'
import type { TransportName } from '@parley/protocol'
import type { Adapter, ParleyServerOptions, ServerSocket } from '@parley/server'
import type { FastifyServerOptions } from 'fastify'
import { describe, expect, it } from 'vitest'
import { startRoundRobin } from '../../../test/support/round-robin.js'
import { Cluster } from './cluster-adapter.js'
import { Gate } from './gated-adapter.js'
import { handoffScene } from './handoff-scene.js'
import { type Started, sleep, startServer, until, within } from './helpers.js'
import { Registry, sampleOf } from './registry.js'

const opened = handoffScene()
const { nodes, clients } = opened

const TRANSPORTS: TransportName[] = ['websocket', 'sse', 'polling']
/** Short, so that a test that leaves sessions unclaimed still closes fast. */
const HANDOFF: ParleyServerOptions = { handoff: { timeout: 2000, retrySpread: 300 } }

interface Node {
  name: string
  index: number
  started: Started
  connections: ServerSocket[]
  restored: ServerSocket[]
  /** Warnings the node logged (their messages). */
  warnings: string[]
  /** The messages of the errors (`err`) those warnings carried, by their message. */
  warnedErrors: Map<string, string>
}

/**
 * `setup` runs for every socket, on `connection` and on `restored` alike (`fresh` tells which),
 * as an application registers its handlers.
 */
type Setup = (socket: ServerSocket, node: Node, fresh: boolean) => void

async function cluster(
  setup: Setup,
  {
    count = 3,
    options = HANDOFF,
    store = new Cluster({ handoff: true }),
  }: {
    count?: number
    /** The same for every node, or a node's own (by its name). */
    options?: ParleyServerOptions | ((name: string) => ParleyServerOptions)
    store?: Cluster
  } = {},
) {
  const list: Node[] = []
  for (let index = 0; index < count; index++) {
    const name = 'abcdef'[index]!
    const node: Node = {
      name,
      index,
      started: undefined as unknown as Started,
      connections: [],
      restored: [],
      warnings: [],
      warnedErrors: new Map(),
    }
    const logger: FastifyServerOptions['logger'] = {
      level: 'warn',
      stream: {
        write(line: string) {
          const { msg, err } = JSON.parse(line) as { msg?: unknown; err?: { message?: unknown } }
          node.warnings.push(String(msg))
          if (err) node.warnedErrors.set(String(msg), String(err.message))
        },
      },
    }
    node.started = await startServer(
      { adapter: store.adapter(name), ...(typeof options === 'function' ? options(name) : options) },
      (app) => {
        app.parley.on('connection', (socket) => {
          node.connections.push(socket)
          setup(socket, node, true)
        })
        app.parley.on('restored', (socket) => {
          node.restored.push(socket)
          setup(socket, node, false)
        })
      },
      // A draining node must keep answering its sessions' requests (see handoff.test.ts).
      { return503OnClosing: false, logger },
    )
    nodes.push(node.started)
    list.push(node)
  }
  const ports = list.map((n) => Number(new URL(n.started.base).port))
  const proxy = await startRoundRobin(ports)
  opened.proxy = proxy
  return { store, list, proxy, base: `${proxy.url}/parley` }
}

/** A client whose `connect` and `disconnect` events are recorded. */
function client(base: string, transport: TransportName) {
  const c = connect(base, { transports: [transport], autoConnect: false })
  clients.push(c)
  const events: string[] = []
  c.on('connect', () => events.push('connect'))
  c.on('disconnect', (reason: string) => events.push(`disconnect ${reason}`))
  return { c, events }
}

/** Connects `c` to node `index` (the proxy skips the others meanwhile). */
async function connectTo(c: Socket, index: number, count = 3) {
  opened.proxy!.avoid.clear()
  for (let k = 0; k < count; k++) if (k !== index) opened.proxy!.avoid.add(k)
  c.connect()
  await until(() => c.connected, 3000, 'connect')
  opened.proxy!.avoid.clear()
}

/**
 * Closes `node`. The balancer's health check takes it out as it starts draining, as an
 * orchestrator takes a terminating node out of service: the round-robin proxy, unlike nginx,
 * does not try the next node when one refuses the connection, and the requests the node still
 * forwards for other nodes' clients are cut when it closes (those clients resume at once, which
 * must not land on a closed port). The requests already on their way still reach it.
 */
async function close(node: Node) {
  opened.proxy!.avoid.add(node.index)
  await node.started.app.close()
  opened.letGo(node.started)
}

const total = (list: Node[], pick: (n: Node) => unknown[]) => list.reduce((k, n) => k + pick(n).length, 0)

/**
 * Holds node `name`'s claims at the store until `answer()`: a claim on its way (a slow store).
 * `asked` once the first was made, `done` once one answered.
 */
function holdClaims(store: Cluster, name: string) {
  const adapter: Adapter = store.nodes.get(name)!
  const claim = adapter.claimSession!.bind(adapter)
  const held = { asked: false, done: false, answer: () => {} }
  const answered = new Promise<void>((resolve) => {
    held.answer = resolve
  })
  adapter.claimSession = async (sid: string) => {
    held.asked = true
    await answered
    try {
      return await claim(sid)
    } finally {
      held.done = true
    }
  }
  return held
}

describe('drain with handoff: two drains at once', () => {
  for (const transport of TRANSPORTS) {
    it(`moves every session of two closing nodes to the third, each claimed once (${transport})`, async () => {
      const received = new Map<string, number[]>()
      const { list, base } = await cluster((socket) => {
        socket.on('up', (n: number) => {
          const seen = received.get(socket.id) ?? []
          seen.push(n)
          received.set(socket.id, seen)
        })
      })
      const all = [0, 1, 2, 0, 1, 2].map((index) => ({ index, ...client(base, transport) }))
      for (const { c, index } of all) await connectTo(c, index)
      let up = 0
      const traffic = setInterval(() => {
        up++
        for (const { c } of all) c.emit('up', up)
      }, 5)
      await sleep(50)
      const [a, b, third] = list as [Node, Node, Node]
      await Promise.all([close(a), close(b)])
      await until(() => third.restored.length === 4, 8000, 'four sessions restored on c')
      await sleep(50)
      clearInterval(traffic)
      await until(() => all.every(({ c }) => c.connected), 3000, 'all connected')
      // What the clients sent while they moved goes again to the third node.
      await until(
        () => all.every(({ c }) => received.get(c.id!)?.length === up),
        5000,
        'every message',
      ).catch(() => {})
      await sleep(100)
      // Every session ends on c, restored once, never a second `connection`.
      expect(total(list, (n) => n.connections)).toBe(6)
      expect(new Set(third.restored.map((s) => s.id)).size).toBe(4)
      expect([...third.started.app.parley.sockets.keys()].sort()).toEqual(all.map(({ c }) => c.id!).sort())
      for (const [k, { c: socket, events }] of all.entries()) {
        expect(events, `client ${k}`).toEqual(['connect'])
        expect(received.get(socket.id!), `client ${k}`).toEqual(Array.from({ length: up }, (_, i) => i + 1))
      }
    })
  }
  it('hands on a session the node was still taking over when its own drain began', async () => {
    const received: number[] = []
    const { store, list, base } = await cluster((socket) => {
      socket.on('up', (n: number) => received.push(n))
    })
    const [a, b, third] = list as [Node, Node, Node]
    const { c, events } = client(base, 'polling')
    await connectTo(c, 0)
    // The resume goes to b, which starts draining as soon as it has won the claim.
    opened.proxy!.avoid.add(0).add(2)
    const adapter: Adapter = store.nodes.get('b')!
    const claim = adapter.claimSession!.bind(adapter)
    let closingB: Promise<void> | undefined
    adapter.claimSession = async (sid: string) => {
      const won = await claim(sid)
      if (won && !closingB) {
        opened.proxy!.avoid.delete(2)
        closingB = close(b)
      }
      return won
    }
    let up = 0
    const traffic = setInterval(() => c.emit('up', ++up), 5)
    await sleep(30)
    await close(a)
    await until(() => closingB !== undefined, 3000, 'b claims')
    await closingB
    await until(() => third.restored.length === 1, 5000, 'restored on c')
    clearInterval(traffic)
    await until(() => received.length === up, 5000, 'every message').catch(() => {})
    expect(received).toEqual(Array.from({ length: up }, (_, i) => i + 1))
    expect(b.restored).toHaveLength(1)
    expect(events).toEqual(['connect'])
  })
  for (const transport of TRANSPORTS) {
    it(`hands on a session whose claim was still under way when the claimer's drain began (${transport})`, async () => {
      const received: number[] = []
      const { store, list, base } = await cluster((socket) => {
        socket.on('up', (n: number) => received.push(n))
      })
      const [a, b, third] = list as [Node, Node, Node]
      const { c, events } = client(base, transport)
      const down: number[] = []
      c.on('down', (n: number) => down.push(n))
      await connectTo(c, 0)
      for (let n = 1; n <= 5; n++) a.connections[0]!.emit('down', n)
      await until(() => down.length === 5, 3000, 'the first messages')
      // The resume goes to b, whose claim waits at the store until b has begun to drain.
      opened.proxy!.avoid.add(0).add(2)
      const held = holdClaims(store, 'b')
      let up = 0
      const traffic = setInterval(() => c.emit('up', ++up), 5)
      const closingA = close(a)
      // Sent to the frozen session: they go with it in the tail.
      for (let n = 6; n <= 10; n++) a.connections[0]!.emit('down', n)
      await until(() => held.asked, 3000, 'b claims')
      opened.proxy!.avoid.add(1).delete(2)
      const drainingB = b.started.app.parley.drain()
      held.answer()
      await drainingB
      await close(b)
      await closingA
      // Restored there, or (the session lost) a new one.
      const onThird = () => third.restored.length + third.connections.length
      await until(() => onThird() === 1 && c.connected, 5000, 'connected to c')
      clearInterval(traffic)
      await until(() => received.length === up, 5000, 'every message').catch(() => {})
      expect(c.recovered).toBe(true)
      expect(events).toEqual(['connect'])
      expect(b.restored).toHaveLength(1)
      expect(third.connections).toEqual([])
      expect(down).toEqual(Array.from({ length: 10 }, (_, i) => i + 1))
      expect(received).toEqual(Array.from({ length: up }, (_, i) => i + 1))
    })
  }
  it("hands on a session whose claim was still under way when the claimer's drain began, running no middleware there", async () => {
    const { store, list, base } = await cluster(() => {})
    const [a, b, third] = list as [Node, Node, Node]
    // b's middleware would never settle: b has begun to close by the time its claim wins, and its
    // verdict would decide nothing (the session is handed on, and judged where it resumes).
    // Waited for, it held b's drain through its timeout, and the claim was given back at close.
    let ran = 0
    b.started.app.parley.use(() => {
      ran++
      return new Promise<void>(() => {})
    })
    const { c, events } = client(base, 'websocket')
    const down: number[] = []
    c.on('down', (n: number) => down.push(n))
    await connectTo(c, 0)
    a.connections[0]!.emit('down', 1)
    await until(() => down.length === 1, 3000, 'the first message')
    // The resume goes to b, whose claim waits at the store until b has begun to drain.
    opened.proxy!.avoid.add(0).add(2)
    const held = holdClaims(store, 'b')
    const closingA = close(a)
    a.connections[0]!.emit('down', 2)
    await until(() => held.asked, 3000, 'b claims')
    opened.proxy!.avoid.add(1).delete(2)
    const drainingB = b.started.app.parley.drain()
    held.answer()
    await within(drainingB, 5000, "b's drain")
    await close(b)
    await closingA
    // Restored there, or (the session lost) a new one, or ended.
    const onThird = () => third.restored.length + third.connections.length
    await until(() => (onThird() === 1 && c.connected) || events.length > 1, 5000, 'connected to c')
    expect(events).toEqual(['connect'])
    expect(c.recovered).toBe(true)
    expect(third.connections).toEqual([])
    expect(b.restored).toHaveLength(1)
    expect(ran).toBe(0)
    expect(down).toEqual([1, 2])
  })
  /**
   * Node b holds a session of its own (`own`) and takes over one a's drain handed off
   * (`arriving`), whose takeover waits at its cut (a's tail, as against a slow store) until the
   * test lets it go; b then drains to c. Both clients send numbered events all along, and get
   * three before and three after.
   */
  async function drainBesideHeldTakeover() {
    const received = new Map<string, number[]>()
    const { store, list, base } = await cluster(
      (socket) => {
        socket.on('up', (n: number) => {
          const seen = received.get(socket.id) ?? []
          seen.push(n)
          received.set(socket.id, seen)
        })
      },
      { options: { handoff: { timeout: 3000, retrySpread: 300 } } },
    )
    const [a, b, third] = list as [Node, Node, Node]
    const arriving = client(base, 'websocket')
    const own = client(base, 'polling')
    const down = new Map<Socket, number[]>()
    for (const { c } of [arriving, own]) {
      const got: number[] = []
      down.set(c, got)
      c.on('down', (n: number) => got.push(n))
    }
    await connectTo(arriving.c, 0)
    await connectTo(own.c, 1)
    for (let n = 1; n <= 3; n++) {
      a.connections[0]!.emit('down', n)
      b.connections[0]!.emit('down', n)
    }
    await until(() => [...down.values()].every((got) => got.length === 3), 3000, 'the first messages')
    let up = 0
    const traffic = setInterval(() => {
      up++
      arriving.c.emit('up', up)
      own.c.emit('up', up)
    }, 5)
    // a's session resumes on b, whose takeover waits at its cut; then b drains, its clients
    // resuming on c.
    store.holdTakeOvers = true
    opened.proxy!.avoid.add(0).add(2)
    const closingA = close(a)
    await until(() => store.heldTakeOvers.length === 1, 5000, 'b’s takeover at its cut')
    store.holdTakeOvers = false
    opened.proxy!.avoid.add(1).delete(2)
    return {
      store,
      a,
      b,
      third,
      arriving,
      own,
      down,
      received,
      closingA,
      stop: () => clearInterval(traffic),
      sent: () => up,
    }
  }

  it('hands on its own sessions while a session it takes over waits for its tail, and that one too once its takeover ends', async () => {
    const { store, b, third, arriving, own, down, received, closingA, stop, sent } =
      await drainBesideHeldTakeover()
    // The takeover ends once b's own session is on its way to the store: after b listed its
    // sessions. Waited for first, it held b's drain through its whole timeout, and b handed on
    // nothing: its own session ended 'server shutdown'.
    const adapter: Adapter = store.nodes.get('b')!
    const handOff = adapter.handOff!.bind(adapter)
    const ownSid = b.connections[0]!.session.sid
    adapter.handOff = (snapshot, ttl) => {
      if (snapshot.sid === ownSid) store.heldTakeOvers[0]?.()
      return handOff(snapshot, ttl)
    }
    const closingB = close(b)
    await until(
      () => third.restored.length === 2 && arriving.c.connected && own.c.connected,
      8000,
      'both sessions restored on c',
    )
    await until(() => !third.restored.some((s) => s.session.restoring), 3000, 'both takeovers over')
    for (const socket of third.restored) for (let n = 4; n <= 6; n++) socket.emit('down', n)
    stop()
    const up = sent()
    await until(
      () => [arriving, own].every(({ c }) => received.get(c.id!)?.length === up && down.get(c)?.length === 6),
      5000,
      'every message',
    ).catch(() => {})
    for (const { c, events } of [arriving, own]) {
      expect(events).toEqual(['connect'])
      expect(c.recovered).toBe(true)
      expect(down.get(c)).toEqual([1, 2, 3, 4, 5, 6])
      expect(received.get(c.id!)).toEqual(Array.from({ length: up }, (_, i) => i + 1))
    }
    expect(third.connections).toEqual([])
    // Taken over on b, then handed on from there.
    expect(b.restored).toHaveLength(1)
    expect(b.warnings.filter((w) => w.includes('still under way'))).toEqual([])
    await within(closingB, 5000, 'b’s close')
    await within(closingA, 5000, 'a’s close')
  })

  it('warns of a takeover still under way when its drain stops waiting for it, and hands on its own sessions; that session ends at close', async () => {
    const { store, b, third, arriving, own, closingA, stop } = await drainBesideHeldTakeover()
    const closingB = close(b)
    await until(() => third.restored.length === 1 && own.c.connected, 8000, 'b’s own session restored on c')
    await within(closingB, 5000, 'b’s close')
    // The cut comes only after b closed: the session it brought there ended with b, and its
    // client starts anew.
    store.heldTakeOvers[0]!()
    await until(() => third.connections.length === 1 && arriving.c.connected, 8000, 'a new session on c')
    stop()
    expect(own.c.recovered).toBe(true)
    expect(own.events).toEqual(['connect'])
    expect(arriving.c.recovered).toBe(false)
    expect(b.restored).toEqual([])
    expect(b.started.app.parley.sockets.size).toBe(0)
    expect(b.warnings.filter((w) => w.includes('still under way'))).toHaveLength(1)
    await within(closingA, 5000, 'a’s close')
  })

  it('gives back a session whose claim wins only after the claimer closed: nothing is left there', async () => {
    const registry = new Registry()
    const { store, list, base } = await cluster(() => {}, {
      options: (name) => ({
        handoff: { timeout: 300, retrySpread: 100 },
        ...(name === 'b' ? { metrics: { registry } } : {}),
      }),
    })
    const [a, b, third] = list as [Node, Node, Node]
    const { c } = client(base, 'websocket')
    await connectTo(c, 0)
    const sid = a.connections[0]!.session.sid
    opened.proxy!.avoid.add(0).add(2)
    const held = holdClaims(store, 'b')
    const closingA = close(a)
    await until(() => held.asked, 3000, 'b claims')
    // The client's next tries wait until b's claim has answered.
    opened.proxy!.offline = true
    opened.proxy!.avoid.add(1).delete(2)
    await close(b)
    held.answer()
    await until(() => held.done && !store.handoffs.has(sid), 3000, "b's claim answered")
    await closingA
    opened.proxy!.offline = false
    await until(() => third.connections.length === 1 && c.connected, 5000, 'a new session on c')
    // A session taken over on a closed node would stay there (detached, until the recovery
    // window) while its client starts anew elsewhere.
    expect(b.restored).toEqual([])
    expect(b.started.app.parley.sockets.size).toBe(0)
    expect(c.recovered).toBe(false)
    expect(b.warnings.filter((w) => /only after it had closed/.test(w))).toHaveLength(1)
    expect(await sampleOf(registry, 'parley_handoffs_total', { outcome: 'given_back' })).toBe(1)
    expect(await sampleOf(registry, 'parley_handoffs_total', { outcome: 'taken' })).toBe(0)
  })
})

describe('drain with handoff: a client that comes back to the draining node', () => {
  // By the live node's URL (as @parley/redis names it), or through the adapter's `routeRequest`
  // (an adapter whose nodes have no URL; HTTP only, as a WebSocket cannot be routed that way).
  const ways = [
    ...TRANSPORTS.map((transport) => [transport, 'by URL'] as const),
    ['sse', 'through routeRequest'] as const,
    ['polling', 'through routeRequest'] as const,
  ]
  for (const [transport, way] of ways) {
    it(`is sent on to a live node, which claims the session at once (${transport}, ${way})`, async () => {
      // How the resume reached each node that restored the session (the routed mark).
      const marks: unknown[] = []
      const anotherNode = way === 'by URL' ? true : 'routed'
      const { list, base } = await cluster(
        (socket, _node, fresh) => {
          if (!fresh) marks.push(socket.handshake.headers['x-parley-routed'])
        },
        { store: new Cluster({ handoff: true, anotherNode }) },
      )
      const { c, events } = client(base, transport)
      const errors: string[] = []
      c.on('transport_error', (_name: string, error: { code: string }) => errors.push(error.code))
      await connectTo(c, 0)
      const [a, ...others] = list as [Node, Node, Node]
      // The balancer has not noticed: every request still goes to the draining node, so only
      // the draining node can have sent the resume on.
      opened.proxy!.avoid.add(1).add(2)
      const closing = a.started.app.close()
      await until(() => total(others, (n) => n.restored) === 1, 5000, 'restored elsewhere')
      // Marked as sent on: should that node's claim fail, it would not start a new session.
      expect(marks[0]).toBe('sent-on')
      opened.proxy!.avoid.clear()
      opened.proxy!.avoid.add(0)
      await closing
      opened.letGo(a.started)
      // What went through the draining node ends with it; the client resumes once more.
      await until(() => c.connected, 3000, 'connected')
      // Never turned away: the draining node took the first resume, and sent it on.
      expect(errors).not.toContain('PARLEY_SERVER_SHUTTING_DOWN')
      expect(events).toEqual(['connect'])
      expect(c.recovered).toBe(true)
      expect(total(list, (n) => n.connections)).toBe(1)
    })
  }

  for (const transport of TRANSPORTS) {
    it(`is turned away there when the adapter names no other node, and resumes elsewhere (${transport})`, async () => {
      const { list, base } = await cluster(() => {}, {
        store: new Cluster({ handoff: true, anotherNode: false }),
      })
      const { c, events } = client(base, transport)
      const errors: string[] = []
      c.on('transport_error', (_name: string, error: { code: string }) => errors.push(error.code))
      await connectTo(c, 0)
      const [a, ...others] = list as [Node, Node, Node]
      // Each resume that reaches the draining node asks its adapter for another node, and is
      // turned away (PARLEY_SERVER_SHUTTING_DOWN) when it names none.
      const adapter = a.started.app.parley.adapter
      const anotherNode = adapter.anotherNode!.bind(adapter)
      let namedNone = 0
      adapter.anotherNode = (sid, except) => {
        const node = anotherNode(sid, except)
        if (!node) namedNone++
        return node
      }
      // The balancer has not noticed yet: the first resumes go back to the draining node.
      opened.proxy!.avoid.add(1).add(2)
      const closing = a.started.app.close()
      await until(() => namedNone > 0, 5000, 'a refused resume')
      opened.proxy!.avoid.clear()
      opened.proxy!.avoid.add(0)
      await until(() => total(others, (n) => n.restored) === 1, 8000, 'restored elsewhere')
      await closing
      opened.letGo(a.started)
      await until(() => c.connected, 3000, 'connected')
      // Turned away by a busy node within the quiet time after the handoff: the application
      // hears nothing of it, nor of the node's close.
      expect(errors).toEqual([])
      expect(events).toEqual(['connect'])
      expect(c.recovered).toBe(true)
      expect(total(list, (n) => n.connections)).toBe(1)
    })
  }
})

describe('drain with handoff: a second resume while the first is taken over', () => {
  it('is told to try again where the session is arriving and where it was sent on, and the first goes on', async () => {
    const store = new Cluster({ handoff: true })
    store.takeOverDelayMs = 800
    const { list, base } = await cluster(() => {}, { store })
    const { c, events } = client(base, 'polling')
    await connectTo(c, 0)
    const [a, b, c3] = list as [Node, Node, Node]
    const sid = a.connections[0]!.session.sid
    // The client's resume goes to b, where the take-over waits for the old node's tail.
    opened.proxy!.avoid.add(0).add(2)
    const closing = a.started.app.close()
    await until(() => b.started.app.parley.sessionFor(sid)?.restoring === true, 3000, 'taking over on b')
    const again = await fetch(`${b.started.base}/poll?v=1`, {
      method: 'POST',
      body: JSON.stringify([8, { sid, ack: 0 }]),
    })
    expect(again.status).toBe(503)
    expect(await again.json()).toEqual({
      code: 'PARLEY_SERVER_SHUTTING_DOWN',
      message: 'the session is still arriving from another node: try again',
    })
    // The draining node sent a retry on to another node (the live nodes changed meanwhile):
    // its claim finds the session taken, and it starts no new session.
    const elsewhere = await fetch(`${c3.started.base}/poll?v=1`, {
      method: 'POST',
      body: JSON.stringify([8, { sid, ack: 0 }]),
      headers: { 'x-parley-routed': 'sent-on' },
    })
    expect(elsewhere.status).toBe(503)
    expect(await elsewhere.json()).toEqual({
      code: 'PARLEY_SERVER_SHUTTING_DOWN',
      message: 'the session was taken over by another node: try again',
    })
    expect(c3.connections).toEqual([])
    await closing
    opened.letGo(a.started)
    await until(() => c.connected, 3000, 'connected')
    expect(c.recovered).toBe(true)
    expect(events).toEqual(['connect'])
    expect(b.restored.map((s) => s.id)).toEqual([c.id])
  })
})

describe('drain with handoff: acks and requests across it', () => {
  it('rejects the old node’s pending acks with PARLEY_SESSION_MOVED; the late reply settles nothing new', async () => {
    const outcomes: string[] = []
    const { list, base } = await cluster((socket, _node, fresh) => {
      const ask = (n: number) =>
        socket.emitWithAck('q', n).then(
          (answer) => outcomes.push(`${n}: ${String(answer)}`),
          (error: { code: string }) => outcomes.push(`${n}: ${error.code}`),
        )
      // The old node asks once; the new one asks right after the restore.
      void ask(fresh ? 1 : 2)
    })
    const { c, events } = client(base, 'websocket')
    const held: (() => void)[] = []
    c.on('q', (n: number, reply: (answer: string) => void) => held.push(() => reply(`reply to ${n}`)))
    await connectTo(c, 0)
    await until(() => held.length === 1, 3000, 'the first question')
    const [a, ...others] = list as [Node, Node, Node]
    await close(a)
    await until(() => outcomes.length === 1, 3000, 'the old ack settled')
    expect(outcomes).toEqual(['1: PARLEY_SESSION_MOVED'])
    await until(() => total(others, (n) => n.restored) === 1 && held.length === 2, 5000, 'asked again')
    // The reply to the old question comes first, with the ack id the new node must not reuse.
    for (const reply of held) reply()
    await until(() => outcomes.length === 2, 3000, 'the new ack settled')
    await sleep(100)
    expect(outcomes).toEqual(['1: PARLEY_SESSION_MOVED', '2: reply to 2'])
    expect(events).toEqual(['connect'])
  })

  it('keeps the ack id of a question the old node asked after the freeze out of the new node’s', async () => {
    const outcomes: string[] = []
    const asked: ServerSocket[] = []
    const ask = (socket: ServerSocket, n: number) =>
      socket.emitWithAck('q', n).then(
        (answer) => outcomes.push(`${n}: ${String(answer)}`),
        (error: { code: string }) => outcomes.push(`${n}: ${error.code}`),
      )
    const { store, list, base } = await cluster((socket, _node, fresh) => {
      // The new node asks as soon as the session is restored.
      if (!fresh) void ask(socket, 2)
      else asked.push(socket)
    })
    const { c, events } = client(base, 'websocket')
    const held: (() => void)[] = []
    c.on('q', (n: number, reply: (answer: string) => void) => held.push(() => reply(`reply to ${n}`)))
    await connectTo(c, 0)
    const [a, ...others] = list as [Node, Node, Node]
    // The store holds its answer: the session is frozen, its snapshot written, not yet claimed.
    let answer = () => {}
    store.storeAnswersAfter = new Promise<void>((resolve) => {
      answer = resolve
    })
    const closed = close(a)
    await until(() => store.handOffSids.length === 1, 3000, 'the snapshot written')
    // A question of the old node's application between the freeze and the cut: numbered into
    // the tail with an ack id that is in no snapshot.
    void ask(asked[0]!, 1)
    answer()
    await until(() => total(others, (n) => n.restored) === 1 && held.length === 2, 5000, 'asked again')
    for (const reply of held) reply()
    await until(() => outcomes.length === 2, 3000, 'both acks settled')
    await sleep(100)
    expect(outcomes).toEqual(['1: PARLEY_SESSION_MOVED', '2: reply to 2'])
    expect(events).toEqual(['connect'])
    await closed
  })

  it('brings a slow handler’s reply through the tail; a request never answered gets PARLEY_SESSION_MOVED', async () => {
    let replyNow: (() => void) | undefined
    let neverSeen = false
    const { store, list, base } = await cluster((socket, _node, fresh) => {
      if (!fresh) return
      socket.on('slow', (n: number, reply: (v: number) => void) => {
        replyNow = () => reply(n * 2)
      })
      socket.on('never', (_n: number, _reply: () => void) => {
        neverSeen = true
      })
    })
    const { c, events } = client(base, 'sse')
    await connectTo(c, 0)
    const slow = c.emitWithAck('slow', 21)
    const never = c.emitWithAck('never', 1).then(
      () => 'answered',
      (error: { code: string }) => error.code,
    )
    await until(() => replyNow !== undefined && neverSeen, 3000, 'both handlers')
    // Hold the claims until the old node replied: that reply must travel in the tail.
    let open: () => void = () => {}
    const gate = new Promise<void>((resolve) => {
      open = resolve
    })
    for (const name of ['b', 'c']) {
      const adapter: Adapter = store.nodes.get(name)!
      const claim = adapter.claimSession!.bind(adapter)
      adapter.claimSession = async (sid: string) => {
        await gate
        return claim(sid)
      }
    }
    const [a, ...others] = list as [Node, Node, Node]
    const closing = close(a)
    await until(() => a.started.app.parley.closing, 3000, 'draining')
    await sleep(20)
    replyNow!()
    open()
    await closing
    await until(() => total(others, (n) => n.restored) === 1, 5000, 'restored')
    expect(await within(slow, 3000, "the slow handler's reply, through the tail")).toBe(42)
    const moved = within(never, 3000, 'the request never answered to fail')
    expect(await moved).toBe('PARLEY_SESSION_MOVED')
    expect(events).toEqual(['connect'])
  })

  it('runs events held by an async middleware at the drain on the new node, in order, once', async () => {
    const handled: string[] = []
    const { list, base } = await cluster((socket, node, fresh) => {
      // On the old node the middleware never lets anything through.
      if (fresh) socket.use(() => new Promise<void>(() => {}))
      else socket.use(async () => {})
      socket.on('e', (n: number) => handled.push(`${node.name}:${n}`))
    })
    const { c, events } = client(base, 'polling')
    await connectTo(c, 0)
    for (let n = 1; n <= 5; n++) c.emit('e', n)
    // Received (and acknowledged) by the old node, held there behind the middleware.
    await sleep(300)
    const [a, ...others] = list as [Node, Node, Node]
    await close(a)
    await until(() => handled.length === 5, 5000, 'the held events')
    await sleep(200)
    const on = others.find((n) => n.restored.length === 1)!
    expect(handled).toEqual([1, 2, 3, 4, 5].map((n) => `${on.name}:${n}`))
    expect(events).toEqual(['connect'])
  })
})

describe('drain with handoff: socket.data and rooms', () => {
  it('starts from {} where socket.data is not plain JSON (warned once per burst), keeps JSON data and rooms', async () => {
    const cycle: Record<string, unknown> = { name: 'cycle' }
    cycle.self = cycle
    const datas: unknown[] = [
      new Map([['a', 1]]),
      new Date(0),
      cycle,
      { name: 'plain', tags: ['x', 1, null] },
    ]
    let k = 0
    const roomHits = new Map<string, number>()
    const { list, base } = await cluster((socket, _node, fresh) => {
      if (!fresh) return
      // Whatever the application puts there; only plain JSON travels.
      socket.data = datas[k++ % datas.length] as Record<string, unknown>
      void socket.join('room')
    })
    const users = datas.map(() => client(base, 'websocket'))
    for (const { c } of users) {
      await connectTo(c, 0)
      c.on('news', () => roomHits.set(c.id!, (roomHits.get(c.id!) ?? 0) + 1))
    }
    const [a, ...others] = list as [Node, Node, Node]
    await close(a)
    await until(() => total(others, (n) => n.restored) === users.length, 5000, 'restored')
    const restored = new Map(others.flatMap((n) => n.restored).map((s) => [s.id, s]))
    const ids = users.map(({ c }) => c.id!)
    expect(ids.slice(0, 3).map((id) => restored.get(id)!.data)).toEqual([{}, {}, {}])
    expect(restored.get(ids[3]!)!.data).toEqual({ name: 'plain', tags: ['x', 1, null] })
    // One line at once, the rest counted in the next (here, at close): not one per session.
    expect(a.warnings.filter((w) => w.includes('socket.data is not plain JSON'))).toEqual([
      expect.stringMatching(/^parley: 1 session\(s\) handed off whose socket.data/),
      expect.stringMatching(/^parley: 2 session\(s\) handed off whose socket.data/),
    ])
    for (const s of restored.values()) expect(s.rooms.has('room')).toBe(true)
    // A broadcast to the room after the handoff reaches each restored socket once.
    others[0]!.started.app.parley.to('room').emit('news', 1)
    await until(() => roomHits.size === users.length, 3000, 'the broadcast')
    await sleep(100)
    expect([...roomHits.values()]).toEqual(users.map(() => 1))
  })

  for (const transport of TRANSPORTS) {
    it(`delivers room broadcasts sent during the drain once and in order, from a node that stays and from the draining one (${transport})`, async () => {
      const { list, base } = await cluster((socket, _node, fresh) => {
        if (fresh) void socket.join('room')
      })
      const got = new Map<Socket, { stays: number[]; drains: number[] }>()
      for (const index of [0, 0, 1, 2]) {
        const { c } = client(base, transport)
        const mine = { stays: [] as number[], drains: [] as number[] }
        got.set(c, mine)
        c.on('bc', (from: 'stays' | 'drains', n: number) => mine[from].push(n))
        await connectTo(c, index)
      }
      const [a, stays] = list as [Node, Node, Node]
      let fromStays = 0
      let fromDrains = 0
      const traffic = setInterval(() => {
        stays.started.app.parley.to('room').emit('bc', 'stays', ++fromStays)
        if (!a.started.app.parley.closed) a.started.app.parley.to('room').emit('bc', 'drains', ++fromDrains)
      }, 5)
      await sleep(50)
      await close(a)
      await until(() => total(list.slice(1), (n) => n.restored) === 2, 5000, 'restored')
      await sleep(50)
      clearInterval(traffic)
      await until(
        () => [...got.values()].every((mine) => mine.stays.at(-1) === fromStays),
        5000,
        'every broadcast',
      )
      await sleep(100)
      for (const [k, mine] of [...got.values()].entries()) {
        expect(mine.stays, `client ${k}`).toEqual(Array.from({ length: fromStays }, (_, i) => i + 1))
        expect(mine.drains, `client ${k}`).toEqual(Array.from({ length: fromDrains }, (_, i) => i + 1))
      }
    })
  }
})

/** A test cluster with handoff whose node b's adapter `alter` changes (one of the application's that fails). */
function clusterWithB(alter: (adapter: Adapter) => void): Cluster {
  class Altered extends Cluster {
    override adapter(name: string) {
      const factory = super.adapter(name)
      if (name !== 'b') return factory
      return (sockets: Parameters<typeof factory>[0]) => {
        const adapter = factory(sockets)
        alter(adapter)
        return adapter
      }
    }
  }
  return new Altered({ handoff: true })
}

/** Two nodes on `store`, and a client on node a that records its `news`; its socket there, in `rooms`. */
async function newsOnA(store: Cluster, rooms: string[] = []) {
  const { list, base } = await cluster(() => {}, { count: 2, store })
  const [a, b] = list as [Node, Node]
  const { c } = client(base, 'websocket')
  const news: string[] = []
  c.on('news', (text: string) => news.push(text))
  await connectTo(c, 0, 2)
  const socket = a.connections[0]!
  if (rooms.length > 0) await socket.join(rooms)
  return { a, b, socket, news }
}

describe('drain with handoff: joins and leaves still under way', () => {
  it('hand the session on in the rooms they leave it in', async () => {
    // Node a's adapter answers its joins and leaves only when the test says (gated-adapter.ts):
    // all of them are under way when it drains.
    const store = new Cluster({ handoff: true })
    const { a, b, socket, news } = await newsOnA(store, ['gone', 'stays'])
    const gate = new Gate()
    store.nodes.get('a')!.gate = gate
    void socket.join('joined')
    void socket.leave('gone')
    // Waits its turn behind the socket's join, which puts the socket in the room it targets.
    void a.started.app.parley.in('joined').socketsJoin('joined too')
    expect(gate.heldNames).toEqual(['join joined'])
    await close(a)
    await until(() => b.restored.length === 1, 5000, 'restored')
    const restored = b.restored[0]!
    // Put back in one join at the cut point: in all of them once in one.
    await until(() => restored.rooms.has('stays'), 3000, 'the rooms joined again')
    expect([...restored.rooms].sort()).toEqual([socket.id, 'joined', 'joined too', 'stays'].sort())
    // The client's end: the room left before the drain no longer reaches it, one joined does.
    const parley = b.started.app.parley
    parley.to('gone').emit('news', 'to gone')
    parley.to('joined too').emit('news', 'to joined too')
    await until(() => news.length > 0, 3000, 'the broadcast')
    await sleep(50)
    expect(news).toEqual(['to joined too'])
  })
})

describe('handoff: joins and leaves made after the freeze', () => {
  // The store is slow: each session stays frozen on its node while its snapshot is written, and
  // application code that holds the socket (a timer, another socket's handler) changes its rooms.
  const ways = {
    /** The node drains. */
    drain: (a: Node) => {
      void close(a)
    },
    /** The client's WebSocket resume reaches the other node, which asks for the session. */
    move: (a: Node) => {
      opened.proxy!.avoid.add(a.index)
      opened.proxy!.cut()
    },
  }
  for (const [way, handOff] of Object.entries(ways)) {
    it(`go with the session: it arrives in the rooms they leave it in, in call order (${way})`, async () => {
      const store = new Cluster({ handoff: true })
      store.storeDelayMs = 300
      const { a, b, socket, news } = await newsOnA(store, ['stays', 'gone'])
      handOff(a)
      await until(() => store.handOffSids.length === 1, 3000, 'the freeze')
      await socket.join('late')
      await socket.leave('gone')
      await socket.join('in and out')
      await socket.leave('in and out')
      await socket.leave('out and in')
      await socket.join('out and in')
      // A `socketsJoin` of this node, and one of the other node, that reach the socket.
      await a.started.app.parley.in('late').socketsJoin('late too')
      await b.started.app.parley.in(socket.id).socketsJoin('from b')
      expect(store.handoffs.get(store.handOffSids[0]!)?.snapshot.rooms.sort()).toEqual(['gone', 'stays'])
      await until(() => b.restored.length === 1, 5000, 'restored')
      const restored = b.restored[0]!
      expect([...restored.rooms].sort()).toEqual(
        [socket.id, 'from b', 'late', 'late too', 'out and in', 'stays'].sort(),
      )
      // The client's end: rooms left after the freeze no longer reach it, those joined do.
      const parley = b.started.app.parley
      parley.to('gone').emit('news', 'to gone')
      parley.to('in and out').emit('news', 'to in and out')
      parley.to('late too').emit('news', 'to late too')
      await until(() => news.length > 0, 3000, 'the broadcast')
      await sleep(50)
      expect(news).toEqual(['to late too'])
    })
  }

  it('a leave the next node cannot make there is logged, and the session still resumes', async () => {
    // Node b's adapter refuses every leave, as an application's adapter whose store is away
    // would: a rejection nobody handled would end the process.
    const store = clusterWithB((adapter) => {
      adapter.del = () => Promise.reject(new Error('the store is away'))
    })
    store.storeDelayMs = 300
    const { a, b, socket } = await newsOnA(store, ['gone'])
    const closing = close(a)
    await until(() => store.handOffSids.length === 1, 3000, 'the freeze')
    await socket.leave('gone')
    await until(() => b.restored.length === 1, 5000, 'restored')
    await until(
      () => b.warnings.some((w) => w.includes('out of rooms they left on their old node')),
      3000,
      'logged',
    )
    expect(b.restored[0]!.connected).toBe(true)
    await closing
  })

  it('reject with PARLEY_SESSION_MOVED on the old socket once the next node took the session over', async () => {
    const { a, b, socket } = await newsOnA(new Cluster({ handoff: true }), ['stays'])
    const closing = close(a)
    await until(() => b.restored.length === 1, 5000, 'restored')
    expect(socket.connected).toBe(false)
    await expect(socket.join('too late')).rejects.toMatchObject({ code: 'PARLEY_SESSION_MOVED' })
    await expect(socket.leave('stays')).rejects.toMatchObject({ code: 'PARLEY_SESSION_MOVED' })
    // Not awaited (a timer's), it ends nothing: the test runner fails on an unhandled rejection.
    void socket.join('too late')
    await sleep(20)
    expect([...b.restored[0]!.rooms].sort()).toEqual([socket.id, 'stays'].sort())
    await closing
  })

  /**
   * Two nodes, a client on node a whose adapter holds its joins (gated-adapter.ts), and a join
   * of `room` made then: what its caller hears, once its promise settles.
   */
  async function heldJoin(room: string, store: Cluster) {
    const { a, b, socket } = await newsOnA(store)
    const gate = new Gate()
    store.nodes.get('a')!.gate = gate
    const outcome = (socket.join(room) as Promise<void>).then(
      () => 'joined',
      (error: Error) => error.message,
    )
    return { a, b, socket, gate, outcome }
  }

  it('a join under way at the freeze that fails before the cut is not handed on: its caller and the session agree', async () => {
    const store = new Cluster({ handoff: true })
    store.storeDelayMs = 300
    const { a, b, socket, gate, outcome } = await heldJoin('refused', store)
    const closing = close(a)
    await until(() => store.handOffSids.length === 1, 3000, 'the freeze')
    // The snapshot holds it as called: the adapter has not answered yet.
    expect(store.handoffs.get(store.handOffSids[0]!)?.snapshot.rooms).toEqual(['refused'])
    gate.held[0]!.fail(new Error('the store is away'))
    expect(await outcome).toBe('the store is away')
    await until(() => b.restored.length === 1, 5000, 'restored')
    expect([...b.restored[0]!.rooms]).toEqual([socket.id])
    await closing
  })

  it('a join still under way at the cut goes with the session, and its caller hears it joined', async () => {
    const { a, b, socket, gate, outcome } = await heldJoin('carried', new Cluster({ handoff: true }))
    const closing = close(a)
    await until(() => b.restored.length === 1, 5000, 'restored')
    await until(() => b.restored[0]!.rooms.has('carried'), 3000, 'the rooms joined again')
    // The old node's adapter fails it once the session has gone: it is done on the next node.
    expect(gate.heldNames).toEqual(['join carried'])
    gate.held[0]!.fail(new Error('the store is away'))
    expect(await outcome).toBe('joined')
    expect([...b.restored[0]!.rooms].sort()).toEqual([socket.id, 'carried'].sort())
    await closing
  })
})

describe('drain with handoff: an adapter that fails', () => {
  it('to put taken-over sockets back into their rooms is logged once per burst; the sessions still resume', async () => {
    // Node b's adapter refuses the takeovers' joins (their own rooms and the ones they had), as
    // an application's adapter whose store is away would: a rejection nobody handled ended the
    // process, and one line per session would flood the log.
    const store = clusterWithB((adapter) => {
      const addAll = adapter.addAll.bind(adapter)
      adapter.addAll = (id, rooms) => {
        const list = [...rooms]
        return list.length > 1 ? Promise.reject(new Error('the store is away')) : addAll(id, list)
      }
    })
    const { list, base } = await cluster(
      (socket, _node, fresh) => {
        if (fresh) void socket.join('room')
      },
      { count: 2, store },
    )
    const [a, b] = list as [Node, Node]
    const all = TRANSPORTS.map((transport) => client(base, transport))
    for (const { c } of all) await connectTo(c, 0, 2)
    await close(a)
    await until(() => b.restored.length === 3, 5000, 'restored on b')
    await until(() => all.every(({ c }) => c.connected), 3000, 'the clients back')
    expect(all.map(({ c }) => c.recovered)).toEqual([true, true, true])
    expect(all.map(({ events }) => events)).toEqual([['connect'], ['connect'], ['connect']])
    const failed = () => b.warnings.filter((w) => w.includes('taken-over socket(s) back into their rooms'))
    await until(() => failed().length === 1, 3000, 'logged')
    // The first at once; the others within 10 s of it, in one line when b closes.
    await close(b)
    expect(failed().map((w) => w.match(/could not put (\d+) /)?.[1])).toEqual(['1', '2'])
  })
})

describe('drain with handoff: a session asked for again while it is being taken over', () => {
  it.each(TRANSPORTS)(
    'is not handed on until the takeover is over; the session goes on there with nothing lost (%s)',
    async (transport) => {
      const received: number[] = []
      const { store, list, base } = await cluster((socket) => {
        socket.on('up', (n: number) => received.push(n))
      })
      const [a, b] = list as [Node, Node, Node]
      const { c, events } = client(base, transport)
      await connectTo(c, 0)
      // The resume goes to b. While b records itself as the owner, the last step of its takeover,
      // another node asks b for the session (as the node a WebSocket resume reached would): b
      // says no, its claim not confirmed yet (handed on, the session could be dropped here by
      // a confirm that says 'kept' or 'ended', its snapshot left for another node to claim).
      opened.proxy!.avoid.add(0).add(2)
      const adapter = store.nodes.get('b')!
      let answer: Promise<boolean> | undefined
      Object.assign(adapter, {
        sessionOpened: (sid: string) => {
          answer ??= adapter.sockets.handOff(sid)
        },
      })
      let up = 0
      const traffic = setInterval(() => c.emit('up', ++up), 5)
      await sleep(30)
      await close(a)
      await until(() => b.restored.length === 1 && c.connected, 5000, 'restored on b')
      clearInterval(traffic)
      await until(() => received.length === up, 5000, 'every message').catch(() => {})
      expect(await answer).toBe(false)
      expect(received).toEqual(Array.from({ length: up }, (_, i) => i + 1))
      expect(b.warnings.filter((w) => /handshake failed|is handed off/.test(w))).toEqual([])
      expect(events).toEqual(['connect'])
    },
  )
})

describe('handoff: a snapshot of a node of an earlier version, without nextAckId', () => {
  /**
   * a hands the session to b, which numbers its questions from farAckId(a's next id), 2^30 + 1
   * (as a node of an earlier version does once it has asked a billion questions in one session,
   * or one whose adapter does not carry the field). b then writes its snapshot without
   * nextAckId, asks in its tail, and c, held at its cut, asks too; the client answers newest
   * first. With `held`, b still awaits a question at its snapshot (`pendingAcks` names it).
   */
  async function threeQuestions(held: boolean): Promise<string[]> {
    const { store, list, base } = await cluster(() => {})
    const [a, b, c3] = list as [Node, Node, Node]
    const { c, events } = client(base, 'websocket')
    const asked: { what: string; reply: (answer: string) => void }[] = []
    c.on('q', (what: string, reply: (answer: string) => void) => asked.push({ what, reply }))
    await connectTo(c, 0)
    const id = c.id!
    opened.proxy!.avoid.add(2)
    await close(a)
    await until(() => b.restored.length === 1 && c.connected, 5000, 'taken over by b')
    const outcomes: string[] = []
    const ask = (socket: ServerSocket, what: string) =>
      socket
        .timeout(10_000)
        .emitWithAck('q', what)
        .then(
          (answer) => outcomes.push(`${what}: ${String(answer)}`),
          (error: { code: string }) => outcomes.push(`${what}: ${error.code}`),
        )
    const onB = b.started.app.parley.sockets.get(id)!
    const before = held ? ['held'] : []
    // Asked just before the drain, still awaited: the snapshot lists it (pendingAcks).
    if (held) {
      void ask(onB, 'held')
      await until(() => asked.length === 1, 3000, 'the question b asked before its drain')
    }
    // b writes its snapshot as a node of an earlier version did: without nextAckId.
    const adapter: Adapter = store.nodes.get('b')!
    const handOff = adapter.handOff!.bind(adapter)
    adapter.handOff = (snapshot, ttl) => {
      const { nextAckId: _, ...earlier } = snapshot
      return handOff(earlier, ttl)
    }
    let answer = () => {}
    store.storeAnswersAfter = new Promise<void>((resolve) => {
      answer = resolve
    })
    store.holdTakeOvers = true
    opened.proxy!.avoid.clear()
    opened.proxy!.avoid.add(0)
    const closed = close(b)
    await until(() => store.handOffSids.length === 2, 3000, 'b’s snapshot written')
    // Between the freeze and the cut, b asks again: numbered into the tail.
    void ask(onB, 'old')
    answer()
    // c has the session registered and waits for the cut: it asks before it reads b's tail.
    await until(() => store.heldTakeOvers.length === 1, 5000, 'c’s takeover at its cut')
    const onC = c3.started.app.parley.sockets.get(id)!
    void ask(onC, 'new')
    store.heldTakeOvers[0]!()
    await until(() => asked.length === before.length + 2, 5000, 'every question at the client')
    expect(asked.map(({ what }) => what)).toEqual([...before, 'old', 'new'])
    // Answered newest first: each reply must reach its own question.
    for (const { what, reply } of [...asked].reverse()) reply(`reply to ${what}`)
    await until(() => outcomes.length === asked.length, 5000, 'every question settled')
    expect(c.id).toBe(id)
    expect(events).toEqual(['connect'])
    await closed
    return outcomes.sort()
  }

  it('numbers the new node’s questions away from those the old node asks in the tail, past its newest awaited one', async () => {
    expect(await threeQuestions(true)).toEqual([
      'held: PARLEY_SESSION_MOVED',
      'new: reply to new',
      'old: PARLEY_SESSION_MOVED',
    ])
  })

  it('gives a question of the new node that the tail shows under the same id another id, when nothing was awaited at the snapshot', async () => {
    // Nothing awaited: the snapshot tells nothing of where b numbers (read as 1), and c's
    // first question takes farAckId(1), the very id of b's question in the tail.
    expect(await threeQuestions(false)).toEqual(['new: reply to new', 'old: PARLEY_SESSION_MOVED'])
  })
})

describe('handoff: an event sent while the session is taken over, within a few bytes of maxPayload', () => {
  const MAX_PAYLOAD = 2000

  it('is dropped when its number no longer lets it fit, and its reply callback hears PARLEY_PAYLOAD_TOO_LARGE at once, naming it', async () => {
    const { store, list, base } = await cluster(() => {}, {
      count: 2,
      options: { ...HANDOFF, maxPayload: MAX_PAYLOAD },
    })
    const [a, b] = list as [Node, Node]
    const { c, events } = client(base, 'websocket')
    const got: string[] = []
    c.on('n', (n: number) => got.push(`n ${n}`))
    c.on('q', (text: string) => got.push(`q (${text.length})`))
    await connectTo(c, 0, 2)
    const id = c.id!
    store.holdTakeOvers = true
    opened.proxy!.avoid.add(0)
    const closed = close(a)
    // b has the session registered and waits for a's tail: what it sends now waits for numbers.
    await until(() => store.heldTakeOvers.length === 1, 5000, 'b’s takeover at its cut')
    const onB = b.started.app.parley.sockets.get(id)!
    // Nine events first: each is checked under the number the session would give it now, the
    // first after the snapshot's, but takes its number in turn, after the others held.
    for (let n = 1; n <= 9; n++) onB.emit('n', n)
    // The largest question that fits now; its number will take one more digit.
    const answer = new Promise<string>((resolve) => {
      for (let length = MAX_PAYLOAD; length > MAX_PAYLOAD - 64; length--) {
        try {
          onB
            .timeout(10_000)
            .emit('q', 'a'.repeat(length), (error: { code?: string; message?: string } | null) =>
              resolve(error ? `${error.code} ${error.message}` : 'replied'),
            )
          return
        } catch {
          // Too large even now: one character less.
        }
      }
      resolve('nothing fitted')
    })
    onB.emit('n', 10)
    store.heldTakeOvers[0]!()
    // Named after its event, as an emit refused at once is.
    const named = /^event "q": the packet is \d+ bytes, past maxPayload \(2000 bytes\)$/
    const heard = await within(answer, 3000, 'the question dropped at the takeover to settle')
    expect(heard.split(' ')[0]).toBe('PARLEY_PAYLOAD_TOO_LARGE')
    expect(heard.slice(heard.indexOf(' ') + 1)).toMatch(named)
    await until(() => got.length === 10, 5000, 'the events around it')
    expect(got).toEqual(Array.from({ length: 10 }, (_, i) => `n ${i + 1}`))
    const dropped = b.warnings.filter((w) => w.includes('no longer fits maxPayload'))
    expect(dropped).toHaveLength(1)
    expect(b.warnedErrors.get(dropped[0]!)).toMatch(named)
    expect(events).toEqual(['connect'])
    await closed
  })
})
