// One benchmark server, in a process of its own: `parley`, `socketio` or `ws` (argv[2]).
// It echoes `echo` events, answers `ack` requests, and on the runner's command broadcasts to
// every client at a steady rate, reads its own CPU time, or collects garbage and reads its
// memory. It listens on 127.0.0.1 only and tells the runner its port. With a Redis URL
// (argv[3]) it is one node of several: Parley with @parley/redis, socket.io with
// @socket.io/redis-adapter, each over clients of the `redis` package. With `--metrics`, Parley
// counts into a prom-client registry (the `metrics` option). `--ping-interval=ms` (Parley and
// socket.io: the heartbeat's period), `--max-payload=bytes` (every server's message and body
// limit) and `--max-buffered-bytes=bytes` (Parley's slow-consumer limit) change what a
// scenario needs changed, for every server alike. With `--count-wire`, it counts the requests,
// packets and bytes of its HTTP port (wire-count.ts), read by the `wire` command.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import v8 from 'node:v8'
import type { AdapterFactory } from '@parley/server'
import { peer } from './rpc.ts'
import { now, sleep } from './stats.ts'
import { sampleSurvivors } from './survivors.ts'
import { countWire } from './wire-count.ts'

export type ServerKind = 'parley' | 'socketio' | 'ws'

/** What each kind of server must offer the runner. */
interface BenchServer {
  port: number
  /** Connected clients. */
  count(): number
  /** Open TCP connections of the server (an HTTP client may hold more than one). */
  connections(): Promise<number>
  /** HTTP requests the server has had so far (WebSocket upgrades not counted). */
  requests(): number
  /** The HTTP server Parley or socket.io answers on (none for raw ws): `--count-wire` counts it. */
  http?: http.Server
  /** Sends `payload` as event `tick` to every client; says how it did so. */
  broadcast(payload: Tick): void
  broadcastMode: string
  close(): Promise<void>
}

export interface Tick {
  t: number
  n: number
  text: string
}

export interface BroadcastResult {
  sent: number
  /** Broadcasts the schedule asked for; more than `sent` when the server fell far behind. */
  offered: number
  recipients: number
  eldP50Ms: number
  eldP99Ms: number
  mode: string
}

/** One broadcast, timed in the server: the emit call, then until the writes were handed on. */
export interface FanoutResult {
  /** The timestamp the broadcast carries (`Tick.t`). */
  t: number
  recipients: number
  /** The synchronous emit call, µs. */
  emitUs: number
  /** Until the next turn of the event loop (deferred writes handed to the sockets too), µs. */
  flushUs: number
}

/** Server options a scenario sets (argv `--name=value`), for every kind of server alike. */
export interface ServerOptions {
  pingInterval?: number
  maxPayload?: number
  maxBufferedBytes?: number
}

export interface MemoryReading {
  rss: number
  heapUsed: number
  /**
   * Bytes V8 holds for its young generation (new space, both semi-spaces), used or not. It grows
   * while many objects survive scavenges and shrinks only once the process allocates little, so
   * it is part of RSS that no connection keeps (docs/benchmarks.md, Findings).
   */
  youngBytes: number
  gc: boolean
}

// The parts of the Parley server the benchmark uses, loosely typed so that it runs (and
// typechecks) with or without rooms: `to()` and `join()` are used when they exist.
interface LooseSocket {
  on(event: string, fn: (...args: never[]) => void): unknown
  emit(event: string, ...args: unknown[]): unknown
  join?: (room: string) => unknown
}
interface LooseParley {
  on(event: 'connection', fn: (socket: LooseSocket) => void): unknown
  sockets: ReadonlyMap<string, LooseSocket>
  socketsCount: number
  to?: (room: string) => { emit(event: string, ...args: unknown[]): unknown }
}

// Each server imports its own library when it starts (and Redis clients only for a node of
// several): a process loads what it runs, and a `--quick` run, which starts dozens of servers,
// does not load socket.io, Fastify and the Redis clients into each.

/** A connected client of the `redis` package; ended with the process. */
async function redisClient(url: string) {
  const { createClient } = await import('redis')
  const client = createClient({ url })
  client.on('error', (err: unknown) => console.error('redis:', err))
  await client.connect()
  return client
}

/**
 * The adapter of a Parley node on Redis. Imported when used: a checkout whose @parley/redis is
 * not built runs every single-node scenario still.
 */
async function parleyRedisAdapter(url: string): Promise<AdapterFactory> {
  const { redisAdapter } = await import('@parley/redis')
  return redisAdapter({ client: await redisClient(url) })
}

/** The `metrics` option with a fresh registry; prom-client is imported only then. */
async function promMetrics() {
  const { Registry } = await import('prom-client')
  return { metrics: { registry: new Registry() } }
}

/**
 * Parley options from `PARLEY_BENCH_PARLEY_OPTIONS` (a JSON object), for looking into what an
 * option changes (`{"sseUpstream":"close-when-idle"}`, say); never for the published figures.
 */
function parleyOptionsFromEnv(): Record<string, unknown> {
  const json = process.env.PARLEY_BENCH_PARLEY_OPTIONS
  if (!json) return {}
  const value: unknown = JSON.parse(json)
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new Error('PARLEY_BENCH_PARLEY_OPTIONS must be a JSON object')
  }
  return value as Record<string, unknown>
}

async function startParley(options: ServerOptions, redisUrl?: string, metrics = false): Promise<BenchServer> {
  const [{ default: Fastify }, { default: parley }] = await Promise.all([
    import('fastify'),
    import('@parley/server'),
  ])
  const app = Fastify()
  const adapter = redisUrl ? { adapter: await parleyRedisAdapter(redisUrl) } : {}
  const { pingInterval, maxPayload, maxBufferedBytes } = options
  await app.register(parley, {
    path: '/parley',
    ...adapter,
    ...(metrics ? await promMetrics() : {}),
    // The period of Parley's heartbeat is the longer of the two.
    ...(pingInterval ? { pingInterval, pingTimeout: Math.min(pingInterval, 15_000) } : {}),
    ...(maxPayload ? { maxPayload } : {}),
    ...(maxBufferedBytes ? { maxBufferedBytes } : {}),
    ...parleyOptionsFromEnv(),
  })
  const io = (app as unknown as { parley: LooseParley }).parley
  io.on('connection', (socket) => {
    if (typeof socket.join === 'function') socket.join('bench')
    socket.on('echo', (m: never) => socket.emit('echo', m))
    socket.on('ack', (m: never, ack?: (reply: unknown) => void) => ack?.(m))
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const rooms = typeof io.to === 'function'
  return {
    port: (app.server.address() as AddressInfo).port,
    http: app.server,
    count: () => io.socketsCount,
    connections: () => connectionsOf(app.server),
    requests: countRequests(app.server),
    broadcast: rooms
      ? (payload) => io.to!('bench').emit('tick', payload)
      : (payload) => {
          for (const socket of io.sockets.values()) socket.emit('tick', payload)
        },
    broadcastMode: rooms ? 'app.parley.to(room).emit' : 'loop over app.parley.sockets (no rooms yet)',
    close: () => app.close(),
  }
}

async function startSocketIo(options: ServerOptions, redisUrl?: string): Promise<BenchServer> {
  const { Server: SocketIoServer } = await import('socket.io')
  const server = http.createServer()
  let adapter = {}
  if (redisUrl) {
    const { createAdapter } = await import('@socket.io/redis-adapter')
    const pub = await redisClient(redisUrl)
    const sub = pub.duplicate()
    sub.on('error', (err: unknown) => console.error('redis:', err))
    await sub.connect()
    adapter = { adapter: createAdapter(pub, sub) }
  }
  const io = new SocketIoServer(server, {
    serveClient: false,
    ...adapter,
    ...(options.pingInterval ? { pingInterval: options.pingInterval } : {}),
    ...(options.maxPayload ? { maxHttpBufferSize: options.maxPayload } : {}),
  })
  io.on('connection', (socket) => {
    socket.join('bench')
    socket.on('echo', (m) => socket.emit('echo', m))
    socket.on('ack', (m, ack) => ack(m))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    http: server,
    count: () => io.engine.clientsCount,
    connections: () => connectionsOf(server),
    // Counted after socket.io attached: engine.io takes the 'request' listeners it finds.
    requests: countRequests(server),
    broadcast: (payload) => io.to('bench').emit('tick', payload),
    broadcastMode: 'io.to(room).emit',
    close: () => new Promise((resolve) => io.close(() => resolve())),
  }
}

// The ceiling: sends back every message as it came, unparsed. Clients frame their messages as
// JSON `[event, data]`, which is also what a broadcast sends (stringified once).
async function startWs(options: ServerOptions): Promise<BenchServer> {
  const { WebSocketServer } = await import('ws')
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    ...(options.maxPayload ? { maxPayload: options.maxPayload } : {}),
  })
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }))
  })
  await new Promise<void>((resolve) => wss.once('listening', resolve))
  return {
    port: (wss.address() as AddressInfo).port,
    count: () => wss.clients.size,
    // Its clients' WebSockets are all it has: one connection each.
    connections: async () => wss.clients.size,
    requests: () => 0,
    broadcast: (payload) => {
      const text = JSON.stringify(['tick', payload])
      for (const ws of wss.clients) ws.send(text)
    },
    broadcastMode: 'loop over clients, one JSON.stringify',
    close: () =>
      new Promise((resolve) => {
        for (const ws of wss.clients) ws.terminate()
        wss.close(() => resolve())
      }),
  }
}

/** Connections the server holds open, upgraded ones included. */
function connectionsOf(server: http.Server): Promise<number> {
  return new Promise((resolve, reject) =>
    server.getConnections((err, count) => (err ? reject(err) : resolve(count))),
  )
}

/** A count of the HTTP requests `server` gets from now on. */
function countRequests(server: http.Server): () => number {
  let requests = 0
  server.on('request', () => {
    requests++
  })
  return () => requests
}

const cpuUs = () => {
  const { user, system } = process.cpuUsage()
  return user + system
}

/** Broadcasts `ticksPerSecond` for `durationMs`, on a schedule that does not drift. */
async function broadcastFor(
  server: BenchServer,
  ticksPerSecond: number,
  durationMs: number,
): Promise<BroadcastResult> {
  const eld = monitorEventLoopDelay({ resolution: 2 })
  const interval = 1000 / ticksPerSecond
  const total = Math.max(1, Math.round((durationMs / 1000) * ticksPerSecond))
  const recipients = server.count()
  const text = 'the quick brown fox jumps over the lazy dog'
  eld.enable()
  const start = now()
  // A server far behind schedule stops sending at twice the window: the load stays bounded in
  // time, and `sent` says how many went out.
  const deadline = start + 2 * durationMs
  let sent = 0
  for (let n = 0; n < total && now() < deadline; n++) {
    const wait = start + n * interval - now()
    // Behind schedule (a heavy broadcast), it still gives the event loop a turn between
    // broadcasts, as a timer-driven application does: a loop that never yields would hold every
    // write and read back until its end, and the event-loop monitor would see no turn at all.
    if (wait > 0) await sleep(wait)
    else await new Promise((resolve) => setImmediate(resolve))
    server.broadcast({ t: now(), n, text })
    sent++
  }
  // The event loop's delay while the last writes leave. (CPU time is read by the load generator
  // around the whole broadcast, until every delivery arrived.)
  await sleep(Math.min(200, interval))
  eld.disable()
  return {
    sent,
    offered: total,
    recipients,
    eldP50Ms: eld.percentile(50) / 1e6,
    eldP99Ms: eld.percentile(99) / 1e6,
    mode: server.broadcastMode,
  }
}

/** One broadcast of a short message, timed; see FanoutResult. */
async function fanout(server: BenchServer, n: number): Promise<FanoutResult> {
  const recipients = server.count()
  const t = now()
  server.broadcast({ t, n, text: 'the quick brown fox jumps over the lazy dog' })
  const emitted = now()
  await new Promise((resolve) => setImmediate(resolve))
  const flushed = now()
  return { t, recipients, emitUs: (emitted - t) * 1000, flushUs: (flushed - t) * 1000 }
}

async function memory(kind: ServerKind): Promise<MemoryReading> {
  const gc = (globalThis as { gc?: () => void }).gc
  for (let i = 0; i < 3 && gc; i++) {
    gc()
    await sleep(50)
  }
  const { rss, heapUsed } = process.memoryUsage()
  const young = v8.getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')
  snapshotHeap(kind)
  return { rss, heapUsed, youngBytes: young?.space_size ?? 0, gc: gc !== undefined }
}

let snapshots = 0

/**
 * With `PARLEY_BENCH_HEAP_SNAPSHOTS=<dir>`, a heap snapshot after each memory reading, for
 * `heap-diff` (heap-diff.ts): `<kind>-<pid>-<n>.heapsnapshot`, n counting the readings. Taken
 * after the reading, which it does not touch; writing one takes seconds and grows the process,
 * so the readings after it are not comparable to a run without it.
 */
function snapshotHeap(kind: ServerKind): void {
  const dir = process.env.PARLEY_BENCH_HEAP_SNAPSHOTS
  if (!dir) return
  const file = path.join(dir, `${kind}-${process.pid}-${++snapshots}.heapsnapshot`)
  console.error(`heap snapshot: ${v8.writeHeapSnapshot(file)}`)
}

async function main() {
  const [kind, ...rest] = process.argv.slice(2) as [ServerKind, ...string[]]
  const redisUrl = rest.find((arg) => !arg.startsWith('--'))
  const option = (name: string) => {
    const arg = rest.find((a) => a.startsWith(`--${name}=`))
    return arg === undefined ? undefined : Number(arg.slice(name.length + 3))
  }
  const options: ServerOptions = {
    pingInterval: option('ping-interval'),
    maxPayload: option('max-payload'),
    maxBufferedBytes: option('max-buffered-bytes'),
  }
  const server =
    kind === 'parley'
      ? await startParley(options, redisUrl, rest.includes('--metrics'))
      : kind === 'socketio'
        ? await startSocketIo(options, redisUrl)
        : await startWs(options)
  // `--count-wire`: the requests, packets and bytes of the HTTP port (wire-count.ts).
  const wire = rest.includes('--count-wire') && server.http ? countWire(server.http) : undefined
  // See survivors.ts: from the first CPU reading (where a measurement starts) to the exit.
  const survivorsDir = process.env.PARLEY_BENCH_SURVIVORS
  let stopSampling: (() => void) | undefined
  peer(process, async (cmd, args) => {
    switch (cmd) {
      case 'cpu':
        if (survivorsDir && !stopSampling) stopSampling = sampleSurvivors(survivorsDir, kind)
        return cpuUs()
      case 'count':
        return server.count()
      case 'connections':
        return server.connections()
      case 'requests':
        return server.requests()
      case 'memory':
        return memory(kind)
      case 'wire':
        return wire?.read()
      case 'wire-reset':
        return wire?.reset()
      case 'fanout':
        return fanout(server, (args as { n: number }).n)
      case 'broadcast': {
        const { ticksPerSecond, durationMs } = args as { ticksPerSecond: number; durationMs: number }
        return broadcastFor(server, ticksPerSecond, durationMs)
      }
    }
    throw new Error(`unknown command ${cmd}`)
  })
  // Never outlive the runner, which ends this process with SIGTERM when it is done with it
  // (an exit, not a kill, so that --cpu-prof writes its profile).
  const exit = () => {
    stopSampling?.()
    process.exit(0)
  }
  process.on('disconnect', exit)
  process.on('SIGTERM', exit)
  process.send?.({ ready: server.port })
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
