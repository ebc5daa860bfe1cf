// Prometheus metrics: counted in the registry the application gives, and nowhere without one.
import { readFileSync } from 'node:fs'
import { connect as connectClient, type Socket } from '@parley/client'
import { type EventPacket, encodeText, type Packet, PacketType } from '@parley/protocol'
import { ParleyOptionError, type ServerSocket } from '@parley/server'
import Fastify, { type FastifyServerOptions } from 'fastify'
import { Counter, register as globalRegistry, Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { tableUnder } from '../../../test/docs/markdown.js'
import { type RoundRobinProxy, startRoundRobin } from '../../../test/support/round-robin.js'
import parley from '../src/index.js'
import { HAND_OFF_OUTCOMES, METRIC_NAMES } from '../src/metrics.js'
import { closedAfterEach } from './closed-after-each.js'
import { Cluster } from './cluster-adapter.js'
import { closeApp, registrationError, type Started, sleep, startServer, until } from './helpers.js'
import { rawConnect } from './raw-client.js'
import { sampleOf as value } from './registry.js'

const opened = closedAfterEach()

/** A registry of no more than the methods `MetricsRegistry` names, in front of `inner`: no removeSingleMetric. */
const facade = (inner: Registry) => ({
  registerMetric: (metric: Parameters<Registry['registerMetric']>[0]) => inner.registerMetric(metric),
  getSingleMetric: (name: string) => inner.getSingleMetric(name),
  metrics: () => inner.metrics(),
})

const event = (seq: number, name: string, args: unknown[], ackId = 0): EventPacket =>
  ({ type: PacketType.EVENT, seq, name, args, ackId }) as EventPacket
const isEvent = (name: string) => (p: Packet) => p.type === PacketType.EVENT && p.name === name

async function connect(...args: Parameters<typeof rawConnect>) {
  const client = await rawConnect(...args)
  opened.clients.push(client)
  return client
}

describe('metrics', () => {
  it('count no disconnect for a session its handshake middleware ended: it never opened', async () => {
    const registry = new Registry()
    opened.started = await startServer({ metrics: { registry } }, (app) => {
      app.parley.use((socket) => {
        if ((socket.handshake.auth as { stay?: boolean } | undefined)?.stay !== true) socket.disconnect()
      })
    })
    await expect(connect('websocket', opened.started.base)).rejects.toMatchObject({ code: 'PARLEY_REFUSED' })
    await connect('websocket', opened.started.base, { auth: { stay: true } })
    expect(await value(registry, 'parley_handshakes_total')).toBe(1)
    expect(await value(registry, 'parley_disconnects_total', { reason: 'server disconnect' })).toBe(0)
  })

  it('count sessions, handshakes, messages, resumes, switches and disconnects', async () => {
    const registry = new Registry()
    const sockets: ServerSocket[] = []
    opened.started = await startServer({ metrics: { registry } }, (app) => {
      app.parley.on('connection', (socket) => {
        sockets.push(socket)
        socket.on('hi', (text: string) => socket.emit('hello', text))
      })
    })
    const { base, app } = opened.started
    const ws = await connect('websocket', base)
    const sse = await connect('sse', base)
    expect(await value(registry, 'parley_handshakes_total')).toBe(2)
    expect(await value(registry, 'parley_sessions', { transport: 'websocket' })).toBe(1)
    expect(await value(registry, 'parley_sessions', { transport: 'sse' })).toBe(1)

    const sent = event(1, 'hi', ['there'])
    await ws.send(sent)
    await ws.next(isEvent('hello'))
    await sse.send(event(1, 'hi', ['you']), event(2, 'hi', ['again']))
    await sse.next(isEvent('hello'))
    await sse.next(isEvent('hello'))
    expect(await value(registry, 'parley_messages_total', { direction: 'in', transport: 'websocket' })).toBe(
      1,
    )
    expect(await value(registry, 'parley_messages_total', { direction: 'out', transport: 'websocket' })).toBe(
      1,
    )
    expect(await value(registry, 'parley_messages_total', { direction: 'in', transport: 'sse' })).toBe(2)
    expect(await value(registry, 'parley_messages_total', { direction: 'out', transport: 'sse' })).toBe(2)
    expect(await value(registry, 'parley_bytes_total', { direction: 'in', transport: 'websocket' })).toBe(
      encodeText(sent).length,
    )
    expect(await value(registry, 'parley_bytes_total', { direction: 'out', transport: 'websocket' })).toBe(
      encodeText(event(1, 'hello', ['there'])).length,
    )
    expect(await value(registry, 'parley_bytes_total', { direction: 'in', transport: 'sse' })).toBe(
      encodeText(event(1, 'hi', ['you'])).length + encodeText(event(2, 'hi', ['again'])).length,
    )

    // The WebSocket drops; its session waits, then resumes over long-polling.
    ws.close()
    await until(() => sockets[0]?.session.transport === null, 3000, 'the session to detach')
    expect(await value(registry, 'parley_sessions', { transport: 'detached' })).toBe(1)
    expect(await value(registry, 'parley_sessions', { transport: 'websocket' })).toBe(0)
    const resumed = await connect('polling', base, { sid: ws.sid, ack: 1 })
    expect(resumed.open.recovered).toBe(true)
    expect(await value(registry, 'parley_resumes_total', { recovered: 'true' })).toBe(1)
    expect(
      await value(registry, 'parley_transport_switches_total', { from: 'websocket', to: 'polling' }),
    ).toBe(1)
    expect(await value(registry, 'parley_sessions', { transport: 'polling' })).toBe(1)
    expect(await value(registry, 'parley_handshakes_total')).toBe(2)

    // The SSE client says goodbye.
    await sse.send({ type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' })
    await until(() => app.parley.socketsCount === 1, 3000, 'the session to end')
    expect(await value(registry, 'parley_disconnects_total', { reason: 'client disconnect' })).toBe(1)
    expect(await value(registry, 'parley_sessions', { transport: 'sse' })).toBe(0)

    // A resume of a session nobody knows: not recovered, counted as unknown, a new session.
    const stranger = await connect('websocket', base, { sid: 'V1StGXR8_Z5jdHi6B-myT', ack: 0 })
    expect(stranger.open.recovered).toBe(false)
    expect(await value(registry, 'parley_resumes_total', { recovered: 'false' })).toBe(1)
    expect(await value(registry, 'parley_unknown_session_requests_total')).toBe(1)
    expect(await value(registry, 'parley_handshakes_total')).toBe(3)

    const text = await registry.getSingleMetricAsString('parley_sessions')
    expect(text).toContain('parley_sessions{transport="polling"} 1')
    expect(text).toContain('parley_sessions{transport="websocket"} 1')
    expect(globalRegistry.getSingleMetric('parley_sessions')).toBeUndefined()
  })

  it('count replies that did not come in time', async () => {
    const registry = new Registry()
    opened.started = await startServer({ metrics: { registry } }, (app) => {
      app.parley.on('connection', (socket) => {
        socket.timeout(20).emit('question', () => {})
      })
    })
    const client = await connect('websocket', opened.started.base)
    await client.next(isEvent('question'))
    await sleep(100)
    expect(await value(registry, 'parley_ack_timeouts_total')).toBe(1)
    expect(await value(registry, 'parley_slow_consumer_total')).toBe(0)
  })

  it('count a client cut for reading too slowly, as a slow consumer and as a disconnect', async () => {
    const registry = new Registry()
    const sockets: ServerSocket[] = []
    opened.started = await startServer({ metrics: { registry }, maxBufferedBytes: 1024 }, (app) => {
      app.parley.on('connection', (socket) => sockets.push(socket))
    })
    await connect('websocket', opened.started.base)
    await until(() => sockets.length === 1)
    // The raw client never acknowledges: what it was sent stays kept until the limit is passed.
    for (let i = 0; i < 10; i++) sockets[0]!.emit('news', 'x'.repeat(200))
    expect(sockets[0]!.connected).toBe(false)
    expect(await value(registry, 'parley_slow_consumer_total')).toBe(1)
    expect(await value(registry, 'parley_disconnects_total', { reason: 'slow consumer' })).toBe(1)
  })

  it('measure how late the PINGs went when the event loop was busy', async () => {
    const registry = new Registry()
    opened.started = await startServer({ metrics: { registry }, pingInterval: 200, pingTimeout: 2000 })
    const client = await connect('websocket', opened.started.base)
    // Held up past the PING's time (200 ms after the attach) by 300 ms at least.
    const busyUntil = performance.now() + 500
    while (performance.now() < busyUntil) {}
    await client.next((p) => p.type === PacketType.PING)
    const samples = (await registry.getMetricsAsJSON()).find((m) => m.name === 'parley_ping_delay_seconds')
    // A histogram's samples name themselves (`_count`, `_sum`, `_bucket`); prom-client's type omits it.
    const sample = (name: string) =>
      samples?.values.find((v) => (v as { metricName?: string }).metricName === name)?.value ?? 0
    expect(sample('parley_ping_delay_seconds_count')).toBeGreaterThanOrEqual(1)
    expect(sample('parley_ping_delay_seconds_sum')).toBeGreaterThanOrEqual(0.25)
  })

  it('register nothing, in the global registry or elsewhere, without the option', async () => {
    opened.started = await startServer({}, (app) => {
      app.parley.on('connection', (socket) => socket.on('hi', () => socket.emit('hello')))
    })
    const client = await connect('websocket', opened.started.base)
    await client.send(event(1, 'hi', []))
    await client.next(isEvent('hello'))
    const names = (await globalRegistry.getMetricsAsJSON()).map((m) => m.name)
    expect(names.filter((n) => n.startsWith('parley_'))).toEqual([])
  })

  it("are the ones the README's Metrics table lists, with its types and labels", async () => {
    const registry = new Registry()
    opened.started = await startServer({ metrics: { registry } })
    const registered = await registry.getMetricsAsJSON()
    const labels = new Map(
      registry.getMetricsAsArray().map((m) => [m.name, (m as { labelNames?: string[] }).labelNames ?? []]),
    )
    const made = registered.map((m) => [m.name, m.type, (labels.get(m.name) ?? []).join(', ')])
    const [, ...rows] = tableUnder(readFileSync(new URL('../README.md', import.meta.url), 'utf8'), 'Metrics')
    const listed = rows.map(([name = '', type = '', labels = '']) =>
      [name, type, labels].map((c) => c.replaceAll('`', '')),
    )
    expect(listed.sort()).toEqual(made.sort())
    // The names checked free before any is made.
    expect([...METRIC_NAMES].sort()).toEqual(registered.map((m) => m.name).sort())
  })

  it("of handoffs are counted under the outcomes the README's Metrics table lists, and no other", () => {
    const [, ...rows] = tableUnder(readFileSync(new URL('../README.md', import.meta.url), 'utf8'), 'Metrics')
    const row = rows.find(([name]) => name === '`parley_handoffs_total`')
    // Each outcome is listed as `name` (what it means).
    const listed = [...(row?.[3] ?? '').matchAll(/`([a-z_]+)` \(/g)].map((match) => match[1])
    expect(listed.sort()).toEqual([...HAND_OFF_OUTCOMES].sort())
  })

  it.each([
    [{ metrics: null }, 'metrics'],
    [{ metrics: new Registry() }, 'metrics'],
    [{ metrics: {} }, 'metrics.registry'],
    [{ metrics: { registry: {} } }, 'metrics.registry'],
    [{ metrics: { registry: new Registry(), extra: 1 } }, 'metrics'],
  ])('refuse a bad metrics option (%#)', async (options, option) => {
    const app = Fastify()
    app.register(parley, options as never)
    const error = await app.ready().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(ParleyOptionError)
    expect((error as ParleyOptionError).option).toBe(option)
    await app.close().catch(() => {})
  })

  it('say what to write for a Registry given in place of { registry }', async () => {
    const app = Fastify()
    try {
      const error = await app.register(parley, { metrics: new Registry() as never }).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(error).toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: 'metrics' })
      expect((error as Error).message).toContain('got the Registry itself: write { registry }')
    } finally {
      await app.close().catch(() => {})
    }
  })

  it('refuse, coded, a registry that holds a metric of one of their names, and add none to it', async () => {
    const registry = new Registry()
    // The application's own, named as one of Parley's happens to be (not the first Parley makes).
    new Counter({ name: 'parley_handshakes_total', help: 'mine', registers: [registry] })
    const app = Fastify()
    try {
      const error = await app.register(parley, { metrics: { registry } }).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(error).toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: 'metrics.registry' })
      expect((error as Error).message).toContain('"parley_handshakes_total"')
      // Nothing of Parley's left behind: a registration with the clash mended takes the registry.
      expect(registry.getMetricsAsArray().map((m) => m.name)).toEqual(['parley_handshakes_total'])
    } finally {
      await app.close().catch(() => {})
    }
  })

  it('stay in the registry once their server closed, and give way to the next one registered with it', async () => {
    const registry = new Registry()
    const first = Fastify()
    await first.register(parley, { metrics: { registry } })
    await first.ready()
    const handshakes = registry.getSingleMetric('parley_handshakes_total')
    await first.close()
    // A last scrape after the close (a push at shutdown) still has them.
    expect(registry.getSingleMetric('parley_handshakes_total')).toBe(handshakes)
    // The application made again in the same process (a restart, a test's), with the same registry.
    const second = Fastify()
    try {
      await second.register(parley, { metrics: { registry } })
      await second.ready()
      const again = registry.getSingleMetric('parley_handshakes_total')
      expect(again).toBeDefined()
      expect(again).not.toBe(handshakes)
    } finally {
      await second.close()
    }
  })

  it('take a registry of the methods the option names, in front of a prom-client one', async () => {
    const inner = new Registry()
    const app = Fastify()
    try {
      await app.register(parley, { metrics: { registry: facade(inner) } })
      await app.ready()
      expect(inner.getSingleMetric('parley_sessions')).toBeDefined()
    } finally {
      await app.close()
    }
    // Refused once its metrics are made (an adapter short of members): the adapter's coded
    // error, though the metrics cannot be taken out of such a registry.
    const refused = Fastify()
    try {
      const error = await refused
        .register(parley, { metrics: { registry: facade(new Registry()) }, adapter: () => ({}) as never })
        .then(
          () => undefined,
          (e: unknown) => e,
        )
      expect(error).toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: 'adapter' })
    } finally {
      await refused.close().catch(() => {})
    }
  })

  it('are adopted by the next server where the registry cannot remove them, and count on', async () => {
    const inner = new Registry()
    const first = await startServer({ metrics: { registry: facade(inner) } })
    try {
      await connect('websocket', first.base)
      expect(await value(inner, 'parley_handshakes_total')).toBe(1)
    } finally {
      await closeApp(first.app)
    }
    // The application made again in the same process, with a registry that has no
    // removeSingleMetric: the closed server's metrics are still there, under every name.
    opened.started = await startServer({ metrics: { registry: facade(inner) } })
    await connect('sse', opened.started.base)
    expect(await value(inner, 'parley_handshakes_total')).toBe(2)
    // Read from the server that holds them now.
    expect(await value(inner, 'parley_sessions', { transport: 'sse' })).toBe(1)
    // Those of a server still open are not another's to adopt.
    const error = await registrationError({ metrics: { registry: facade(inner) } })
    expect(error).toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: 'metrics.registry' })
    expect((error as Error).message).toContain('"parley_sessions"')
  })

  it("refuse, coded, a registry that cannot remove and holds only some of a closed server's", async () => {
    const inner = new Registry()
    const first = Fastify()
    await first.register(parley, { metrics: { registry: facade(inner) } })
    await first.ready()
    await first.close()
    // The application's doing: prom-client's own registry behind its facade can.
    inner.removeSingleMetric('parley_ping_delay_seconds')
    const error = await registrationError({ metrics: { registry: facade(inner) } })
    expect(error).toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: 'metrics.registry' })
    expect((error as Error).message).toContain('but not "parley_ping_delay_seconds"')
    expect(inner.getSingleMetric('parley_ping_delay_seconds')).toBeUndefined()
  })

  it("refuse, coded, a registry another Parley server's metrics are in: two mount points take one each", async () => {
    const registry = new Registry()
    const app = Fastify()
    try {
      await app.register(async (child) => {
        await child.register(parley, { path: '/a', metrics: { registry } })
      })
      const error = await app
        .register(async (child) => {
          await child.register(parley, { path: '/b', metrics: { registry } })
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        )
      expect(error).toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: 'metrics.registry' })
      expect((error as Error).message).toContain('"parley_sessions"')
    } finally {
      await app.close().catch(() => {})
    }
  })
})

describe('handoff metrics', () => {
  /** Two nodes of `cluster`, each with its own registry, draining with `timeout`. */
  async function twoNodes(cluster: Cluster, timeout: number, fastify: FastifyServerOptions = {}) {
    const registries = [new Registry(), new Registry()]
    const nodes: Started[] = []
    for (const [i, registry] of registries.entries()) {
      nodes.push(
        await startServer(
          { adapter: cluster.adapter(`n${i}`), metrics: { registry }, handoff: { timeout, retrySpread: 0 } },
          undefined,
          { return503OnClosing: false, ...fastify },
        ),
      )
    }
    return { registries, nodes }
  }

  /**
   * `count` WebSocket clients connected to node 0 through a round-robin proxy that sends their
   * next connections to node 1; `act` runs then. Everything is closed after it (the nodes it left
   * open).
   */
  async function clientsOfNode0(
    nodes: Started[],
    count: number,
    act: (clients: Socket[], proxy: RoundRobinProxy) => Promise<void>,
  ) {
    const proxy = await startRoundRobin(nodes.map((n) => Number(new URL(n.base).port)))
    proxy.avoid.add(1)
    const clients: Socket[] = []
    try {
      for (let i = 0; i < count; i++) {
        const client = connectClient(`${proxy.url}/parley`, { transports: ['websocket'] })
        clients.push(client)
        await until(() => client.connected)
      }
      proxy.avoid.clear()
      proxy.avoid.add(0)
      await act(clients, proxy)
    } finally {
      for (const client of clients) client.disconnect()
      await sleep(50)
      await proxy.close()
      await Promise.all(nodes.filter((n) => !n.app.parley.closing).map((n) => n.app.close()))
    }
  }

  /** One client of node 0 (see `clientsOfNode0`). */
  function clientOfNode0(nodes: Started[], act: (client: Socket, proxy: RoundRobinProxy) => Promise<void>) {
    return clientsOfNode0(nodes, 1, (clients, proxy) => act(clients[0]!, proxy))
  }

  /** `count` clients of node 0 resume on node 1 as node 0 drains; `check` reads the metrics then. */
  function drainOnce(nodes: Started[], check: () => Promise<void>, count = 1) {
    return clientsOfNode0(nodes, count, async (clients) => {
      await nodes[0]!.app.close()
      await until(() => clients.every((c) => c.connected && c.recovered), 3000, 'resumed on the other node')
      await check()
    })
  }

  it('count sessions stored by a draining node and taken over by another', async () => {
    const { registries, nodes } = await twoNodes(new Cluster({ handoff: true }), 2000)
    await drainOnce(nodes, async () => {
      expect(await value(registries[0]!, 'parley_handoffs_total', { outcome: 'stored' })).toBe(1)
      expect(await value(registries[0]!, 'parley_disconnects_total', { reason: 'server handoff' })).toBe(1)
      expect(await value(registries[1]!, 'parley_handoffs_total', { outcome: 'taken' })).toBe(1)
    })
  })

  it('count a session taken over whose tail does not follow its snapshot, which ends', async () => {
    const cluster = new Cluster({ handoff: true })
    cluster.unreadableTails = true
    const { registries, nodes } = await twoNodes(cluster, 2000)
    await clientOfNode0(nodes, async (client) => {
      const first = client.id
      const reasons: string[] = []
      client.on('disconnect', (reason: string) => reasons.push(reason))
      await nodes[0]!.app.close()
      await until(() => client.connected && client.id !== first, 5000, 'a new session on the other node')
      expect(reasons).toContain('session expired')
      expect(client.recovered).toBe(false)
      expect(await value(registries[0]!, 'parley_handoffs_total', { outcome: 'stored' })).toBe(1)
      expect(await value(registries[1]!, 'parley_handoffs_total', { outcome: 'broken_tail' })).toBe(1)
      for (const outcome of ['taken', 'incomplete', 'late', 'restarted', 'given_back'])
        expect(await value(registries[1]!, 'parley_handoffs_total', { outcome })).toBe(0)
    })
  })

  it('count a session that ended on its draining node after it was stored', async () => {
    const cluster = new Cluster({ handoff: true })
    // The client's claim comes well after the disconnect below.
    cluster.claimDelayMs = 300
    const { registries, nodes } = await twoNodes(cluster, 2000)
    const old = nodes[0]!
    await clientOfNode0(nodes, async (client) => {
      const first = client.id
      const [socket] = old.app.parley.sockets.values()
      const closing = old.app.close()
      await until(() => [...cluster.handoffs.values()].some((h) => h.stored), 3000, 'snapshot stored')
      socket!.disconnect()
      await until(() => client.connected && client.id !== first, 5000, 'a new session on the other node')
      await closing
      expect(await value(registries[0]!, 'parley_handoffs_total', { outcome: 'stored' })).toBe(1)
      expect(await value(registries[0]!, 'parley_handoffs_total', { outcome: 'withdrawn' })).toBe(1)
      expect(await value(registries[1]!, 'parley_handoffs_total', { outcome: 'taken' })).toBe(0)
    })
  })

  it('count a session a drain could not store in time once, as failed', async () => {
    const cluster = new Cluster({ handoff: true })
    // Slower than handoff.timeout: the drain gives up on it and ends it 'server shutdown'.
    cluster.storeDelayMs = 800
    const { registries, nodes } = await twoNodes(cluster, 300)
    await clientOfNode0(nodes, async () => {
      await nodes[0]!.app.close()
      await until(() => cluster.handOffsAnswered === 1, 5000, 'the late answer of the store')
      const handoffs = (outcome: string) => value(registries[0]!, 'parley_handoffs_total', { outcome })
      expect(await handoffs('failed')).toBe(1)
      expect(await handoffs('withdrawn')).toBe(0)
      expect(await handoffs('stored')).toBe(0)
      expect(await value(registries[0]!, 'parley_disconnects_total', { reason: 'server shutdown' })).toBe(1)
    })
  })

  it('count a move given up on, and its snapshot withdrawn once the store wrote it late', async () => {
    const cluster = new Cluster({ handoff: true })
    // Slower than handoff.timeout: the owner keeps the session, the store writes it after.
    cluster.storeDelayMs = 800
    const { registries, nodes } = await twoNodes(cluster, 300)
    await clientOfNode0(nodes, async (_client, proxy) => {
      // The WebSocket resume reaches node 1, which asks node 0 for the session.
      proxy.cut()
      await until(() => cluster.handOffsAnswered === 1, 5000, 'the late answer of the store')
      // At once when the owner gave up, and again after the store's answer.
      await until(() => cluster.withdrawals === 2, 5000, 'the withdraws')
      expect(await value(registries[0]!, 'parley_handoffs_total', { outcome: 'failed' })).toBe(1)
      expect(await value(registries[0]!, 'parley_handoffs_total', { outcome: 'withdrawn' })).toBe(1)
      expect(await value(registries[0]!, 'parley_handoffs_total', { outcome: 'stored' })).toBe(0)
    })
  })

  it('count a move whose store rejected as failed only, its snapshot withdrawn all the same', async () => {
    const cluster = new Cluster({ handoff: true })
    // The write reaches the store, its reply does not: the owner keeps the session.
    cluster.storeRejects = true
    const { registries, nodes } = await twoNodes(cluster, 2000)
    await clientOfNode0(nodes, async (client, proxy) => {
      // The WebSocket resume reaches node 1, which asks node 0 for the session.
      proxy.cut()
      await until(() => cluster.handOffsAnswered === 1, 5000, 'the rejection of the store')
      await until(() => client.connected, 5000, 'resumed on node 0, through node 1')
      // At once when the owner gave up, and again after the store's rejection.
      await until(() => cluster.withdrawals === 2, 5000, 'the withdraws')
      const handoffs = (outcome: string) => value(registries[0]!, 'parley_handoffs_total', { outcome })
      expect(await handoffs('failed')).toBe(1)
      expect(await handoffs('withdrawn')).toBe(0)
      expect(await handoffs('stored')).toBe(0)
    })
  })

  interface LogLine {
    msg: string
    count: number
    total: number
    socket: string
  }

  /**
   * Three clients of node 0 resume on node 1 as node 0 drains (see `drainOnce`), both nodes
   * logging at warn; `check` runs then, given the lines so far whose message holds `text`.
   * Resolves with those lines once both nodes closed.
   */
  async function drainThree(
    cluster: Cluster,
    timeout: number,
    text: string,
    check: (lines: LogLine[], registries: Registry[], nodes: Started[]) => Promise<void>,
  ) {
    const warnings: string[] = []
    const { registries, nodes } = await twoNodes(cluster, timeout, {
      logger: { level: 'warn', stream: { write: (line: string) => void warnings.push(line) } },
    })
    const lines = () =>
      warnings.map((line) => JSON.parse(line) as LogLine).filter(({ msg }) => msg.includes(text))
    await drainOnce(nodes, () => check(lines(), registries, nodes), 3)
    return lines()
  }

  it('count sessions claimed after their old node stopped waiting for a claim, and warn once per burst', async () => {
    const cluster = new Cluster({ handoff: true })
    // The clients come back (their claims land) after the old node's drain gave up on one.
    cluster.claimDelayMs = 600
    const text = 'stopped waiting (handoff.timeout)'
    const lines = await drainThree(cluster, 200, text, async (late, registries, nodes) => {
      expect(await value(registries[0]!, 'parley_handoffs_total', { outcome: 'unclaimed' })).toBe(3)
      expect(await value(registries[1]!, 'parley_handoffs_total', { outcome: 'late' })).toBe(3)
      expect(await value(registries[1]!, 'parley_handoffs_total', { outcome: 'taken' })).toBe(0)
      // Another node was alive when the old one sealed: not a restart.
      expect(await value(registries[1]!, 'parley_handoffs_total', { outcome: 'restarted' })).toBe(0)
      // The first at once, with its socket as an example; not one line per session.
      expect(late).toMatchObject([{ count: 1, total: 1, msg: expect.stringContaining('1 session(s)') }])
      expect([...nodes[1]!.app.parley.sockets.keys()]).toContain(late[0]!.socket)
    })
    // The rest in one line, here at close.
    expect(lines).toMatchObject([
      { count: 1, total: 1 },
      { count: 2, total: 3 },
    ])
  })

  it('count sessions taken over without their tail sealed, and warn once per burst', async () => {
    const cluster = new Cluster({ handoff: true })
    // The old node's seal never reaches the claims: the tails come back incomplete.
    cluster.sealLost = true
    cluster.claimDelayMs = 100
    const lines = await drainThree(
      cluster,
      1000,
      'did not seal their tail',
      async (incomplete, registries) => {
        expect(await value(registries[1]!, 'parley_handoffs_total', { outcome: 'incomplete' })).toBe(3)
        expect(incomplete).toMatchObject([{ count: 1, total: 1 }])
      },
    )
    expect(lines).toMatchObject([
      { count: 1, total: 1 },
      { count: 2, total: 3 },
    ])
  })
})
