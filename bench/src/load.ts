// The load generator: a process of its own that opens the clients of one scenario against one
// server, drives them, and reports what it measured. The server's own readings (CPU time,
// memory, event-loop delay) come through the runner (`server(...)`).

import { startFaultProxy, type WsMode } from '../../test/support/fault-proxy.ts'
import {
  type BenchClient,
  type ClientKind,
  type ClientSettings,
  createClient,
  type FetchKind,
  type Msg,
} from './clients.ts'
import { clientsForStep, openFilesLimit, socketsPerClient } from './open-files.ts'
import { peer } from './rpc.ts'
import type { BroadcastResult, FanoutResult, MemoryReading } from './server.ts'
import { now, quantile, sleep } from './stats.ts'

export interface ScenarioArgs {
  kind: ClientKind
  url: string
  fetch: FetchKind
  [param: string]: unknown
}

/** Metric name -> value; every scenario returns flat numbers (and a few notes). */
export interface Measurement {
  values: Record<string, number>
  notes?: string[]
}

const runner = peer(process, (cmd, args) => run(cmd, args as ScenarioArgs))
/** A call to the server (with several nodes: the first, where broadcasts start). */
const server = <T>(cmd: string, args?: unknown, timeoutMs?: number) =>
  runner.call<T>('server', { cmd, args }, timeoutMs)
/** The same call to every node, answers in node order. */
const nodes = <T>(cmd: string, args?: unknown) => runner.call<T[]>('server', { cmd, args, node: 'all' })

/** What the runner reads of the processes in front of and behind the nodes. */
export interface ClusterReading {
  /** Requests nginx logged, by status. */
  statuses: Record<string, number>
  nginxCpuUs: number
  redisCpuUs: number
}
const cluster = () => runner.call<ClusterReading>('cluster')
const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0)

/** A numeric parameter of the scenario. */
function num(a: ScenarioArgs, key: string): number {
  const v = a[key]
  if (typeof v !== 'number') throw new TypeError(`parameter ${key} missing`)
  return v
}

const CONNECT_TIMEOUT = 20_000

/** How the scenario's clients reach the server (at `url`, the server's own unless a proxy's). */
const settings = (a: ScenarioArgs, url = a.url): ClientSettings => ({
  url,
  timeoutMs: CONNECT_TIMEOUT,
  fetch: a.fetch,
})

/** This process's CPU time in µs (user + system). */
const ownCpuUs = () => {
  const { user, system } = process.cpuUsage()
  return user + system
}

/**
 * The load generator's CPU use over a window, in % of one core. Near 100 it is the bottleneck
 * (it runs on one core), and the throughput it reports says more about the clients than about
 * the server.
 */
const cpuPercent = (cpuUs: number, ms: number) => (cpuUs / 1000 / ms) * 100

/** Opens `n` clients, at most `parallel` connecting at once; fails if any does not connect. */
async function openClients(a: ScenarioArgs, n: number, parallel: number): Promise<BenchClient[]> {
  const clients: BenchClient[] = []
  let next = 0
  const worker = async () => {
    while (next < n) {
      next++
      const c = createClient(a.kind, settings(a))
      clients.push(c)
      await c.ready
    }
  }
  try {
    await Promise.all(Array.from({ length: Math.min(parallel, n) }, worker))
  } catch (err) {
    await closeAll(clients)
    throw err
  }
  return clients
}

/**
 * Closes every client, and resolves once each one's goodbye was answered (bounded: see
 * BenchClient.close): the server has ended their sessions when the measurement returns, and a
 * server kept for the next one (`--quick`) is idle by then.
 */
async function closeAll(clients: readonly BenchClient[]): Promise<void> {
  await Promise.all(clients.map((c) => c.close()))
}

/** Waits until `done()` or `limitMs` passed. */
async function until(done: () => boolean, limitMs: number) {
  const end = now() + limitMs
  while (!done() && now() < end) await sleep(10)
}

/**
 * Round trips at a fixed concurrency: every client keeps `inFlight` messages out, sending the
 * next one as each reply arrives. `mode` echo: an event answered by an event; acks: a request
 * answered by the server's reply (raw ws: the same echo, matched by id).
 */
async function roundTrips(a: ScenarioArgs, mode: 'echo' | 'acks'): Promise<Measurement> {
  const [n, inFlight, warmupMs, durationMs] = ['clients', 'inFlight', 'warmupMs', 'durationMs'].map((k) =>
    num(a, k),
  ) as [number, number, number, number]
  const clients = await openClients(a, n, 25)
  const rtts: number[] = []
  let measuring = false
  let running = true
  let outstanding = 0
  let count = 0
  let nextId = 1
  const received = (m: Msg) => {
    outstanding--
    if (measuring) {
      count++
      rtts.push(now() - m.t)
    }
  }
  const send = (c: BenchClient) => {
    if (!running) return
    outstanding++
    const m: Msg = { id: nextId++, t: now(), text: 'hello, round trip' }
    if (mode === 'echo') c.emit('echo', m)
    else
      c.request(m).then(
        (reply) => {
          received(reply)
          send(c)
        },
        () => outstanding--,
      )
  }
  try {
    for (const c of clients) {
      if (mode === 'echo')
        c.on('echo', (m) => {
          received(m)
          send(c)
        })
      for (let i = 0; i < inFlight; i++) send(c)
    }
    await sleep(warmupMs)
    const cpu0 = await server<number>('cpu')
    const load0 = ownCpuUs()
    const t0 = now()
    measuring = true
    await sleep(durationMs)
    measuring = false
    const t1 = now()
    const load1 = ownCpuUs()
    const cpu1 = await server<number>('cpu')
    running = false
    await until(() => outstanding <= 0, 3000)
    return {
      values: {
        msgsPerSec: (count / (t1 - t0)) * 1000,
        rttP50Ms: quantile(rtts, 0.5),
        rttP99Ms: quantile(rtts, 0.99),
        cpuUsPerMsg: (cpu1 - cpu0) / count,
        loadCpuPct: cpuPercent(load1 - load0, t1 - t0),
      },
    }
  } finally {
    running = false
    await closeAll(clients)
  }
}

/**
 * Echo at a steady `rate` (messages per second, all clients together, spread round-robin, on a
 * schedule that does not drift) rather than as fast as possible: every server then gets the same
 * arrivals, so that its CPU per message compares servers and not how busy the machine was (a
 * saturated echo's CPU per message moves with how many messages each read batches).
 */
async function steadyEcho(a: ScenarioArgs): Promise<Measurement> {
  const [n, rate, warmupMs, durationMs] = ['clients', 'rate', 'warmupMs', 'durationMs'].map((k) =>
    num(a, k),
  ) as [number, number, number, number]
  const clients = await openClients(a, n, 25)
  const TICK_MS = 5
  const perTick = (rate * TICK_MS) / 1000
  const rtts: number[] = []
  let measuring = false
  let sent = 0
  let echoed = 0
  let nextId = 1
  for (const c of clients)
    c.on('echo', (m) => {
      if (!measuring || m.n !== 1) return
      echoed++
      rtts.push(now() - m.t)
    })
  /** Sends at `rate` for `ms`; messages sent while measuring carry n = 1. */
  const pace = async (ms: number) => {
    const start = now()
    let due = 0
    for (let tick = 1; now() - start < ms; tick++) {
      for (; due < Math.round(tick * perTick); due++) {
        const c = clients[nextId % n]!
        c.emit('echo', { id: nextId++, t: now(), n: measuring ? 1 : 0, text: 'hello, round trip' })
        if (measuring) sent++
      }
      const wait = start + tick * TICK_MS - now()
      if (wait > 0) await sleep(wait)
    }
  }
  try {
    await pace(warmupMs)
    const cpu0 = await server<number>('cpu')
    const load0 = ownCpuUs()
    const t0 = now()
    measuring = true
    await pace(durationMs)
    // The last echoes of the window still count, and the CPU they cost with them.
    await until(() => echoed >= sent, 3000)
    const t1 = now()
    const cpu1 = await server<number>('cpu')
    measuring = false
    return {
      values: {
        msgsPerSec: (echoed / (t1 - t0)) * 1000,
        rttP50Ms: quantile(rtts, 0.5),
        rttP99Ms: quantile(rtts, 0.99),
        cpuUsPerMsg: (cpu1 - cpu0) / echoed,
        echoedShare: sent > 0 ? echoed / sent : 0,
        loadCpuPct: cpuPercent(ownCpuUs() - load0, t1 - t0),
      },
    }
  } finally {
    measuring = false
    await closeAll(clients)
  }
}

/** `clients` clients in one room; the server broadcasts `rate` deliveries per second in all. */
async function broadcast(a: ScenarioArgs): Promise<Measurement> {
  const [n, rate, warmupMs, durationMs, quietMs] = [
    'clients',
    'rate',
    'warmupMs',
    'durationMs',
    'quietMs',
  ].map((k) => num(a, k)) as [number, number, number, number, number]
  const clients = await openClients(a, n, 50)
  const latencies: number[] = []
  let recording = false
  let warm = 0
  let delivered = 0
  let last = 0
  try {
    for (const c of clients)
      c.on('tick', (m) => {
        if (!recording) {
          warm++
          return
        }
        delivered++
        last = now()
        latencies.push(last - m.t)
      })
    const joined = await server<number>('count')
    if (joined < n) throw new Error(`only ${joined} of ${n} clients reached the server`)
    // The same broadcast, unmeasured, until every warm-up delivery arrived: what a client does
    // once per session (the HTTP transports' first upstream POST opens a connection of its own,
    // the server's replay buffers fill to their steady size) is not counted per delivery.
    const w = await server<BroadcastResult>(
      'broadcast',
      { ticksPerSecond: rate / n, durationMs: warmupMs },
      warmupMs + 30_000,
    )
    await until(() => warm >= w.sent * w.recipients, 5000)
    await sleep(quietMs)
    recording = true
    const cpu0 = await server<number>('cpu')
    const requests0 = await server<number>('requests')
    const load0 = ownCpuUs()
    const t0 = now()
    const b = await server<BroadcastResult>(
      'broadcast',
      { ticksPerSecond: rate / n, durationMs },
      durationMs + 30_000,
    )
    const loadCpu = cpuPercent(ownCpuUs() - load0, now() - t0)
    const expected = b.sent * b.recipients
    await until(() => delivered >= expected, 5000)
    // The server's CPU until every delivery arrived: a server that fell behind still writes
    // (and reads the clients' ACKs) after its last broadcast.
    const cpu1 = await server<number>('cpu')
    const requests = (await server<number>('requests')) - requests0
    recording = false
    return {
      values: {
        latencyP50Ms: quantile(latencies, 0.5),
        latencyP99Ms: quantile(latencies, 0.99),
        cpuUsPerDelivery: (cpu1 - cpu0) / expected,
        // Over HTTP, what an answer carries: a server that answers polls sooner answers more of
        // them, each with fewer deliveries, and pays per answer. None over WebSocket (shown –).
        deliveriesPerRequest: requests > 0 ? expected / requests : Number.NaN,
        eventLoopDelayP50Ms: b.eldP50Ms,
        eventLoopDelayP99Ms: b.eldP99Ms,
        deliveredShare: delivered / expected,
        deliveriesPerSec: (expected / durationMs) * 1000,
        // Offered is `rate`; a server that keeps up delivers as fast (the window is the
        // server's schedule, from the first send to the last delivery).
        achievedPerSec: last > t0 ? (delivered / (last - t0)) * 1000 : 0,
        loadCpuPct: loadCpu,
      },
      notes: [
        `broadcast: ${b.mode}`,
        ...(b.sent < b.offered
          ? [`sent ${b.sent} of ${b.offered} broadcasts: sending stops at twice the window`]
          : []),
      ],
    }
  } finally {
    await closeAll(clients)
  }
}

/** The steps of a scenario of steps (config.ts `steps`). */
function stepsOf(a: ScenarioArgs): number[] {
  const steps = a.steps
  if (!Array.isArray(steps) || steps.length === 0) throw new TypeError('parameter steps missing')
  return steps as number[]
}

/**
 * Source addresses for `sockets` connections to one server port: one address has about 28 000
 * ephemeral ports (Linux's default range), so past 14 000 connections the clients spread over
 * 127.0.0.1, 127.0.0.2, ... (all of 127/8 is the loopback on Linux; elsewhere, one address).
 */
function sourcesFor(sockets: number): (i: number) => string | undefined {
  const count = process.platform === 'linux' ? Math.min(8, Math.ceil(sockets / 14_000)) : 1
  return count <= 1 ? () => undefined : (i) => `127.0.0.${1 + (i % count)}`
}

/** Opens clients until there are `target`, at most `parallel` connecting at once. */
async function growClients(
  a: ScenarioArgs,
  clients: BenchClient[],
  target: number,
  parallel: number,
  source: (i: number) => string | undefined,
) {
  let next = clients.length
  const worker = async () => {
    while (next < target) {
      const i = next++
      const c = createClient(a.kind, { ...settings(a), localAddress: source(i) })
      clients.push(c)
      await c.ready
    }
  }
  await Promise.all(Array.from({ length: Math.min(parallel, target - next) }, worker))
}

/**
 * Idle connections, step by step on one server (1k, then up to 5k, then up to 20k): per step,
 * the connect rate of the clients added, memory per connection after GC over a reading taken
 * with the warm-up batch open, and the server's CPU over `idleMs` with nothing but heartbeats.
 */
async function idle(a: ScenarioArgs): Promise<Measurement> {
  const steps = stepsOf(a)
  const [warmup, parallel, settleMs, idleMs] = ['warmup', 'parallel', 'settleMs', 'idleMs'].map((k) =>
    num(a, k),
  ) as [number, number, number, number]
  const values: Record<string, number> = {}
  const notes: string[] = []
  const clients: BenchClient[] = []
  const source = sourcesFor((warmup + Math.max(...steps)) * socketsPerClient(a.kind))
  try {
    await growClients(a, clients, warmup, parallel, source)
    // The warm-up batch in its steady state too (see `settleMs` in the scenario's config).
    await sleep(settleMs)
    const before = await server<MemoryReading>('memory')
    const connectionsBefore = await server<number>('connections')
    let previous = 0
    for (const n of steps) {
      const opened = clientsForStep(a.kind, n, warmup, previous, 'connections', notes, openFilesLimit())
      if (opened === 0) continue
      previous = opened
      const had = clients.length
      const t0 = now()
      await growClients(a, clients, warmup + opened, parallel, source)
      values[`connectsPerSec@${n}`] = ((clients.length - had) / (now() - t0)) * 1000
      await sleep(settleMs)
      // On a busy machine some clients may miss a heartbeat and be gone: the readings are then
      // per connection still there, and a note says so.
      const count = await server<number>('count')
      const live = count - warmup
      if (live < opened / 2) throw new Error(`only ${count} of ${warmup + opened} clients still connected`)
      if (count < warmup + opened) notes.push(`${n} connections: ${live} still connected when read`)
      const after = await server<MemoryReading>('memory')
      values[`held@${n}`] = live
      values[`rssKBPerConn@${n}`] = (after.rss - before.rss) / live / 1024
      values[`heapKBPerConn@${n}`] = (after.heapUsed - before.heapUsed) / live / 1024
      values[`youngKBPerConn@${n}`] = (after.youngBytes - before.youngBytes) / live / 1024
      const perClient = ((await server<number>('connections')) - connectionsBefore) / live
      // Sessions outlive their connections (a resume may come): a count of sessions alone would
      // read the memory of clients whose connections are gone (missed heartbeats on a loaded
      // machine) as theirs. Every client holds one at least (a second, for POSTs, comes with
      // the first PONG).
      if (perClient < 0.9) throw new Error(`${n} connections: ${perClient.toFixed(2)} open per client`)
      values[`connectionsPerClient@${n}`] = perClient
      const cpu0 = await server<number>('cpu')
      const load0 = ownCpuUs()
      const w0 = now()
      await sleep(idleMs)
      const cpu1 = await server<number>('cpu')
      const ms = now() - w0
      values[`idleCpuPct@${n}`] = cpuPercent(cpu1 - cpu0, ms)
      values[`loadCpuPct@${n}`] = cpuPercent(ownCpuUs() - load0, ms)
    }
    return { values, notes }
  } finally {
    await closeAll(clients)
  }
}

/**
 * One broadcast at a time to a room of 100, then 1k, then 10k clients: the server times its
 * emit call and the turn of the event loop that hands the writes on (FanoutResult); the load
 * generator, when the last client got it. `broadcasts` per step, medians reported.
 */
async function fanout(a: ScenarioArgs): Promise<Measurement> {
  const steps = stepsOf(a)
  const [broadcasts, parallel, quietMs] = [num(a, 'broadcasts'), num(a, 'parallel'), num(a, 'quietMs')]
  const values: Record<string, number> = {}
  const notes: string[] = []
  const clients: BenchClient[] = []
  const source = sourcesFor(Math.max(...steps) * socketsPerClient(a.kind))
  let current = -1
  let got = 0
  let lastAt = 0
  const onTick = (m: Msg) => {
    if (m.n !== current) return
    got++
    lastAt = now()
  }
  try {
    let previous = 0
    for (const n of steps) {
      const opened = clientsForStep(a.kind, n, 0, previous, 'recipients', notes, openFilesLimit())
      if (opened === 0) continue
      previous = opened
      const had = clients.length
      await growClients(a, clients, opened, parallel, source)
      for (const c of clients.slice(had)) c.on('tick', onTick)
      const count = await server<number>('count')
      if (count < opened) throw new Error(`only ${count} of ${opened} clients reached the server`)
      await sleep(quietMs)
      const emit: number[] = []
      const flush: number[] = []
      const all: number[] = []
      const load0 = ownCpuUs()
      const w0 = now()
      for (let i = 0; i < broadcasts; i++) {
        current++
        got = 0
        const r = await server<FanoutResult>('fanout', { n: current })
        await until(() => got >= r.recipients, 10_000)
        if (got < r.recipients)
          throw new Error(`a broadcast reached ${got} of ${r.recipients} clients in 10 s`)
        emit.push(r.emitUs)
        flush.push(r.flushUs)
        all.push(lastAt - r.t)
        await sleep(20)
      }
      values[`loadCpuPct@${n}`] = cpuPercent(ownCpuUs() - load0, now() - w0)
      values[`recipients@${n}`] = opened
      values[`emitUs@${n}`] = quantile(emit, 0.5)
      values[`flushUs@${n}`] = quantile(flush, 0.5)
      values[`usPerDelivery@${n}`] = quantile(flush, 0.5) / opened
      values[`allReceivedMs@${n}`] = quantile(all, 0.5)
    }
    return { values, notes }
  } finally {
    await closeAll(clients)
  }
}

/** How long a size step's window may run on past `durationMs` to count its `minEchoes`. */
const SIZE_WINDOW_LIMIT_MS = 30_000

/**
 * Echo of messages whose text is 64 B, 64 KB, 1 MB (the steps), on the same clients: closed
 * loop, 10, 2 and 1 in flight per client (128 KB each at most, 10 at most). Server CPU per byte
 * is per byte of text echoed (received once and sent back once). A step's window lasts
 * `durationMs` and until `minEchoes` echoes came back: a few 1 MB echoes take longer than a
 * quick window on a busy machine, and a window with none (or with too little work for a CPU
 * clock that counts in ticks) would read no CPU per byte at all.
 */
async function sizeEcho(a: ScenarioArgs): Promise<Measurement> {
  const steps = stepsOf(a)
  const [n, warmupMs, durationMs, minEchoes] = ['clients', 'warmupMs', 'durationMs', 'minEchoes'].map((k) =>
    num(a, k),
  ) as [number, number, number, number]
  const clients = await openClients(a, n, 25)
  const values: Record<string, number> = {}
  let text = ''
  let running = false
  let measuring = false
  let outstanding = 0
  let count = 0
  let nextId = 1
  let rtts: number[] = []
  const send = (c: BenchClient) => {
    if (!running) return
    outstanding++
    c.emit('echo', { id: nextId++, t: now(), text })
  }
  try {
    for (const c of clients)
      c.on('echo', (m) => {
        outstanding--
        if (measuring) {
          count++
          rtts.push(now() - m.t)
        }
        send(c)
      })
    for (const size of steps) {
      text = 'x'.repeat(size)
      const inFlight = Math.max(1, Math.min(10, Math.floor(131_072 / size)))
      running = true
      for (const c of clients) for (let i = 0; i < inFlight; i++) send(c)
      await sleep(warmupMs)
      const cpu0 = await server<number>('cpu')
      const load0 = ownCpuUs()
      const t0 = now()
      count = 0
      rtts = []
      measuring = true
      await sleep(durationMs)
      await until(() => count >= minEchoes, SIZE_WINDOW_LIMIT_MS)
      measuring = false
      const t1 = now()
      const load1 = ownCpuUs()
      const cpu1 = await server<number>('cpu')
      running = false
      if (count < minEchoes)
        throw new Error(
          `${count} echoes of ${size} bytes in ${Math.round(t1 - t0)} ms, fewer than ${minEchoes}`,
        )
      await until(() => outstanding <= 0, 10_000)
      if (outstanding > 0) throw new Error(`${outstanding} echoes of ${size} bytes still missing after 10 s`)
      values[`msgsPerSec@${size}`] = (count / (t1 - t0)) * 1000
      values[`mbPerSec@${size}`] = (count * size) / (t1 - t0) / 1000
      values[`cpuNsPerByte@${size}`] = ((cpu1 - cpu0) * 1000) / (count * size)
      values[`rttP50Ms@${size}`] = quantile(rtts, 0.5)
      values[`loadCpuPct@${size}`] = cpuPercent(load1 - load0, t1 - t0)
    }
    return { values }
  } finally {
    running = false
    await closeAll(clients)
  }
}

/** Server memory per idle connection: `clients` connections opened after a warm-up batch. */
async function memory(a: ScenarioArgs): Promise<Measurement> {
  const [n, warmup, settleMs, quietMs] = ['clients', 'warmup', 'settleMs', 'quietMs'].map((k) =>
    num(a, k),
  ) as [number, number, number, number]
  const clients = await openClients(a, warmup, 50)
  try {
    await sleep(quietMs)
    const before = await server<MemoryReading>('memory')
    clients.push(...(await openClients(a, n, 50)))
    await sleep(settleMs)
    const count = await server<number>('count')
    const after = await server<MemoryReading>('memory')
    if (count < n + warmup) throw new Error(`only ${count} of ${n + warmup} clients reached the server`)
    return {
      values: {
        rssKBPerConn: (after.rss - before.rss) / n / 1024,
        heapKBPerConn: (after.heapUsed - before.heapUsed) / n / 1024,
      },
      notes: after.gc ? [] : ['memory read without a forced GC (no --expose-gc)'],
    }
  } finally {
    await closeAll(clients)
  }
}

/** Connections per second: `connections` clients, `parallel` connecting at a time. */
async function setup(a: ScenarioArgs): Promise<Measurement> {
  const [n, parallel] = [num(a, 'connections'), num(a, 'parallel')]
  const t0 = now()
  const clients = await openClients(a, n, parallel)
  const t1 = now()
  await closeAll(clients)
  return { values: { connectsPerSec: (n / (t1 - t0)) * 1000 } }
}

/**
 * Time to connected with the default client through a fault proxy whose WebSocket upgrades
 * pass, are refused (400), or hang (TCP accepted, never answered). `samples` clients at once,
 * each with an empty memory of what worked before.
 */
async function fallback(a: ScenarioArgs): Promise<Measurement> {
  const samples = num(a, 'samples')
  const port = Number(new URL(a.url).port)
  const values: Record<string, number> = {}
  const notes: string[] = []
  for (const mode of ['pass', 'reject', 'hang'] as WsMode[]) {
    const proxy = await startFaultProxy(port)
    proxy.ws = mode
    const clients: BenchClient[] = []
    try {
      const times = await Promise.all(
        Array.from({ length: samples }, async () => {
          const t0 = now()
          const c = createClient(a.kind, settings(a, proxy.url))
          clients.push(c)
          await c.ready
          return { ms: now() - t0, transport: c.transport() }
        }),
      )
      values[`${mode}Ms`] = quantile(
        times.map((t) => t.ms),
        0.5,
      )
      notes.push(`ws ${mode}: connected over ${[...new Set(times.map((t) => t.transport))].join(', ')}`)
    } finally {
      await closeAll(clients)
      await proxy.close()
    }
  }
  return { values, notes }
}

/**
 * Several nodes over Redis, clients through nginx round-robin (`a.url` is nginx): the first node
 * broadcasts to every client in the room, on every node. Server CPU is summed over the nodes;
 * Redis and nginx are read from /proc.
 */
async function clusterBroadcast(a: ScenarioArgs): Promise<Measurement> {
  const [n, rate, durationMs] = [num(a, 'clients'), num(a, 'rate'), num(a, 'durationMs')]
  const clients = await openClients(a, n, 50)
  const latencies: number[] = []
  let recording = false
  let delivered = 0
  let last = 0
  try {
    for (const c of clients)
      c.on('tick', (m) => {
        if (!recording) return
        delivered++
        last = now()
        latencies.push(now() - m.t)
      })
    const counts = await nodes<number>('count')
    const joined = sum(counts)
    if (joined < n) throw new Error(`only ${joined} of ${n} clients reached the nodes (${counts.join('/')})`)
    await sleep(300)
    recording = true
    const cpu0 = await nodes<number>('cpu')
    const ext0 = await cluster()
    const load0 = ownCpuUs()
    const t0 = now()
    const b = await server<BroadcastResult>(
      'broadcast',
      { ticksPerSecond: rate / n, durationMs },
      durationMs + 30_000,
    )
    const expected = b.sent * joined
    await until(() => delivered >= expected, 5000)
    const loadCpu = cpuPercent(ownCpuUs() - load0, now() - t0)
    const cpu1 = await nodes<number>('cpu')
    const ext1 = await cluster()
    recording = false
    const per = (us: number) => (delivered > 0 ? us / delivered : Number.NaN)
    return {
      values: {
        deliveriesPerSec: last > t0 ? (delivered / (last - t0)) * 1000 : 0,
        latencyP50Ms: quantile(latencies, 0.5),
        latencyP99Ms: quantile(latencies, 0.99),
        cpuUsPerDelivery: per(sum(cpu1) - sum(cpu0)),
        redisUsPerDelivery: per(ext1.redisCpuUs - ext0.redisCpuUs),
        nginxUsPerDelivery: per(ext1.nginxCpuUs - ext0.nginxCpuUs),
        deliveredShare: delivered / expected,
        loadCpuPct: loadCpu,
      },
      notes: [`broadcast from node 1: ${b.mode}; clients per node ${counts.join('/')}`],
    }
  } finally {
    await closeAll(clients)
  }
}

/** Rejects after `ms` unless `p` settled. */
function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms)
  })
  return Promise.race([p, limit]).finally(() => clearTimeout(timer))
}

/**
 * Correctness through a balancer without session affinity: `clients` clients connect through
 * nginx round-robin, at most 10 at once; the first node broadcasts `ticks` times; every connected
 * client sends one request for an ack. Failures are counted, not thrown.
 */
async function clusterHttp(a: ScenarioArgs): Promise<Measurement> {
  const [n, connectTimeoutMs, ticks, tickMs] = ['clients', 'connectTimeoutMs', 'ticks', 'tickMs'].map((k) =>
    num(a, k),
  ) as [number, number, number, number]
  const clients: BenchClient[] = []
  const connected: BenchClient[] = []
  const transports = new Map<string, number>()
  const failures = new Map<string, number>()
  let next = 0
  const worker = async () => {
    while (next < n) {
      next++
      const c = createClient(a.kind, { ...settings(a), timeoutMs: connectTimeoutMs })
      clients.push(c)
      try {
        await c.ready
        connected.push(c)
        const transport = c.transport() ?? 'unknown'
        transports.set(transport, (transports.get(transport) ?? 0) + 1)
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err)
        failures.set(message, (failures.get(message) ?? 0) + 1)
        await c.close()
      }
    }
  }
  try {
    await Promise.all(Array.from({ length: Math.min(10, n) }, worker))
    let received = 0
    for (const c of connected) c.on('tick', () => received++)
    await sleep(300)
    await server<BroadcastResult>('broadcast', { ticksPerSecond: 1000 / tickMs, durationMs: ticks * tickMs })
    await until(() => received >= ticks * connected.length, 3000)
    let acked = 0
    await Promise.all(
      connected.map((c, i) =>
        within(c.request({ id: i + 1, t: now() }), 5000).then(
          () => acked++,
          () => {},
        ),
      ),
    )
    const connectedAtEnd = clients.filter((c) => c.connected()).length
    await sleep(150) // nginx flushes its access log every 100 ms
    const { statuses } = await cluster()
    return {
      values: {
        connected: connected.length,
        failed: n - connected.length,
        http400: statuses['400'] ?? 0,
        receivedShare: received / (ticks * n),
        ackedShare: acked / n,
        connectedAtEnd,
      },
      notes: [
        ...[...failures].map(([message, count]) => `failed ${count}×: ${message}`),
        ...[...transports].map(([transport, count]) => `connected ${count}× over ${transport}`),
      ],
    }
  } finally {
    await closeAll(clients)
  }
}

function run(cmd: string, args: ScenarioArgs): Promise<Measurement> {
  switch (cmd) {
    case 'echo':
      return roundTrips(args, 'echo')
    case 'acks':
      return roundTrips(args, 'acks')
    case 'broadcast':
    case 'broadcast-heavy':
      return broadcast(args)
    case 'idle':
      return idle(args)
    case 'fanout':
      return fanout(args)
    case 'size':
      return sizeEcho(args)
    case 'memory':
      return memory(args)
    case 'setup':
      return setup(args)
    case 'fallback':
      return fallback(args)
    case 'cluster':
      return clusterBroadcast(args)
    case 'cluster-http':
      return clusterHttp(args)
    case 'echo-steady':
    case 'metrics':
      // What differs is the server (`parley-metrics`: with a registry), not the load.
      return steadyEcho(args)
  }
  return Promise.reject(new Error(`unknown scenario ${cmd}`))
}

// Never outlive the runner, which ends this process with SIGTERM when it is done with it (an
// exit, not a kill, so that --cpu-prof writes its profile).
process.on('disconnect', () => process.exit(0))
process.on('SIGTERM', () => process.exit(0))
process.send?.({ ready: true })
