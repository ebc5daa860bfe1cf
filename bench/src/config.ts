// What a run measures, and how much of it: the default run (about twelve minutes on two cores)
// and `--quick` (tiny counts, one repetition, seconds: for the test that keeps the harness alive).
// The multi-node scenarios (`cluster`, `cluster-http`) run three server processes over one
// Redis behind nginx; `--only cluster` selects both. `metrics` runs the echo workload on Parley
// without the metrics option and with a prom-client registry: what counting costs.
import type { ClientKind, Target } from './clients.ts'

export type ScenarioName =
  | 'echo'
  | 'echo-steady'
  | 'acks'
  | 'broadcast'
  | 'memory'
  | 'setup'
  | 'fallback'
  | 'cluster'
  | 'cluster-http'
  | 'metrics'
  | 'idle'
  | 'fanout'
  | 'size'
  | 'broadcast-heavy'

export const TARGETS: readonly Target[] = [
  'ws',
  'parley-websocket',
  'parley-sse',
  'parley-polling',
  'socketio-websocket',
  'socketio-polling',
]

/** The WebSocket rows of the steady echo: each server at the same arrivals, whatever its client costs. */
const STEADY_TARGETS: readonly Target[] = [
  'ws',
  'parley-websocket',
  'parley-thin-websocket',
  'socketio-websocket',
]

/** The thin clients beside the libraries' own (echo and broadcast). */
export const THIN_TARGETS: readonly Target[] = [
  'parley-thin-websocket',
  'parley-thin-sse',
  'parley-thin-polling',
  'socketio-thin-polling',
]

/**
 * V8 flags of every load generator (never of a server, which runs with V8's defaults). A thousand
 * clients in one process, each idle between connecting and the first broadcast, make V8 pretenure
 * the array that `ws` allocates after every message it reads (nearly all of them outlived a
 * scavenge then); from that point each message's buffers stay reachable from that array's dead
 * copies in old space until a full GC, so every scavenge copies and promotes them (2.2 MB per
 * scavenge instead of 0.2 here). Whether a run falls into that depends on how many frames a
 * client gets before going quiet (one for Parley, two for socket.io), not on the client's cost,
 * and it moved the broadcast's p99 by 10 to 20 ms from run to run (docs/benchmarks.md, Findings).
 */
export const LOAD_FLAGS: readonly string[] = ['--no-allocation-site-pretenuring']

export interface MetricDef {
  key: string
  label: string
  /** Digits after the point in tables. */
  digits: number
  /** Shows a ratio to raw ws of the same repetition. */
  ratio: boolean
}

export interface ScenarioDef {
  name: ScenarioName
  title: string
  /** Clients used, in order; `ws` (when present) is the reference of the ratios. */
  targets: readonly ClientKind[]
  metrics: readonly MetricDef[]
  /** Repetitions of this scenario (memory and fallback times hardly depend on noise). */
  reps: number
  /** Node flags of every server process of this scenario (besides --expose-gc). */
  serverFlags: readonly string[]
  /**
   * With `nodes` (2 and up): that many server nodes over one Redis, behind nginx, given
   * `settleMs` to find each other before the load generator starts.
   */
  params: Record<string, number>
  /**
   * A scenario of steps (connections, recipients, message bytes) measured one after the other
   * on the same server process and clients: one table line per step, metrics keyed
   * `<metric>@<step>`.
   */
  steps?: readonly number[]
  /** What a step counts: `connections`, `recipients`, `bytes`. */
  stepUnit?: string
  /** Options of every server process of this scenario (server.ts: `--ping-interval=5000`, ...). */
  serverArgs?: readonly string[]
}

/** The metric keys a scenario reports: `key`, or `key@step` for each step. */
export const metricKeys = (s: ScenarioDef, key: string): string[] =>
  s.steps ? s.steps.map((step) => `${key}@${step}`) : [key]

/** The clients of the scenarios that open many connections: thin ones, to keep the generator light. */
const THIN_ONLY: readonly ClientKind[] = [
  'ws',
  'parley-thin-websocket',
  'parley-thin-sse',
  'parley-thin-polling',
  'socketio-thin-websocket',
  'socketio-thin-polling',
]

/** The scenarios of how cost grows with work (connections, recipients, bytes, rate). */
export const isGrowth = (s: { name: ScenarioName }): boolean =>
  s.name === 'idle' || s.name === 'fanout' || s.name === 'size' || s.name === 'broadcast-heavy'

/** Server nodes of a scenario: 1, or `params.nodes` for the multi-node ones. */
export const nodesOf = (s: ScenarioDef): number => s.params.nodes ?? 1

const m = (key: string, label: string, digits: number, ratio = true): MetricDef => ({
  key,
  label,
  digits,
  ratio,
})

/**
 * Server options of the idle, fanout and size scenarios under `--quick`: the options of both
 * idle and size, for all three, so that one server process of each kind serves the three (a
 * quick run keeps a server for the next measurement of the same command line). No quick window
 * is long enough for a heartbeat, and none of its messages nears a payload limit but size's.
 */
const QUICK_GROWTH_ARGS: readonly string[] = [
  '--ping-interval=5000',
  '--max-payload=2097152',
  '--max-buffered-bytes=67108864',
]

export function scenarios(quick: boolean, reps: number): ScenarioDef[] {
  const q = <T>(full: T, small: T) => (quick ? small : full)
  // --quick: windows just long enough for every client to send and hear a few dozen messages
  // on a busy machine (what its test checks is that each one works, not how fast).
  const roundTrip = q(
    { clients: 50, inFlight: 10, warmupMs: 500, durationMs: 1500 },
    { clients: 4, inFlight: 2, warmupMs: 50, durationMs: 150 },
  )
  const rtMetrics = [
    m('msgsPerSec', 'msgs/s', 0),
    m('rttP50Ms', 'RTT p50 ms', 2),
    m('rttP99Ms', 'RTT p99 ms', 2),
    m('cpuUsPerMsg', 'server CPU µs/msg', 1),
    m('loadCpuPct', 'load generator CPU %', 0, false),
  ]
  return [
    {
      name: 'echo',
      title: `Echo: ${roundTrip.clients} clients, ${roundTrip.inFlight} messages in flight each`,
      // --quick: the thin clients are exercised by bench/test/growth.test.ts (idle, fanout, size).
      targets: q([...TARGETS, ...THIN_TARGETS], TARGETS),
      metrics: rtMetrics,
      reps,
      serverFlags: [],
      params: roundTrip,
    },
    {
      name: 'echo-steady',
      title: q(
        'Echo at a steady 15 000 messages/s (50 clients): server CPU at the same offered load',
        'Echo at a steady 500 messages/s (4 clients): server CPU at the same offered load',
      ),
      targets: q(STEADY_TARGETS, ['ws', 'parley-websocket', 'socketio-websocket']),
      metrics: [
        m('cpuUsPerMsg', 'server CPU µs/msg', 2),
        m('echoedShare', 'echoed', 3, false),
        m('rttP50Ms', 'RTT p50 ms', 2),
        m('rttP99Ms', 'RTT p99 ms', 2),
        m('loadCpuPct', 'load generator CPU %', 0, false),
      ],
      reps,
      serverFlags: [],
      params: q(
        { clients: 50, rate: 15_000, warmupMs: 1000, durationMs: 2000 },
        { clients: 4, rate: 500, warmupMs: 50, durationMs: 150 },
      ),
    },
    {
      name: 'acks',
      title: `Acks (emitWithAck answered by the server): ${roundTrip.clients} clients, ${roundTrip.inFlight} in flight each`,
      targets: TARGETS,
      metrics: rtMetrics,
      // No target reads it, and it moves with echo: two repetitions keep the run short.
      reps: Math.min(reps, 2),
      serverFlags: [],
      params: roundTrip,
    },
    {
      name: 'broadcast',
      title: q(
        'Broadcast to 1000 clients in a room, 25 000 deliveries/s',
        'Broadcast to 10 clients in a room, 250 deliveries/s',
      ),
      targets: q([...TARGETS, ...THIN_TARGETS], TARGETS),
      metrics: [
        m('latencyP50Ms', 'delivery p50 ms', 2),
        m('latencyP99Ms', 'delivery p99 ms', 2),
        m('cpuUsPerDelivery', 'server CPU µs/delivery', 2),
        m('eventLoopDelayP99Ms', 'event-loop delay p99 ms', 2),
        m('deliveredShare', 'delivered', 3, false),
        m('deliveriesPerRequest', 'deliveries per HTTP request', 1, false),
        m('loadCpuPct', 'load generator CPU %', 0, false),
      ],
      reps,
      serverFlags: [],
      // quietMs: the pause between the warm-up and the measured window.
      params: q(
        { clients: 1000, rate: 25_000, warmupMs: 5500, durationMs: 5000, quietMs: 300 },
        { clients: 10, rate: 250, warmupMs: 100, durationMs: 200, quietMs: 0 },
      ),
    },
    {
      name: 'broadcast-heavy',
      title: q(
        'Heavy broadcast to 1000 clients in a room, 100 000 deliveries/s offered',
        'Heavy broadcast to 10 clients in a room, 1000 deliveries/s offered',
      ),
      targets: [...TARGETS, ...THIN_TARGETS],
      metrics: [
        m('achievedPerSec', 'deliveries/s achieved', 0),
        m('deliveredShare', 'delivered', 3, false),
        m('latencyP50Ms', 'delivery p50 ms', 2),
        m('latencyP99Ms', 'delivery p99 ms', 2),
        m('cpuUsPerDelivery', 'server CPU µs/delivery', 2),
        m('eventLoopDelayP99Ms', 'event-loop delay p99 ms', 2),
        m('deliveriesPerRequest', 'deliveries per HTTP request', 1, false),
        m('loadCpuPct', 'load generator CPU %', 0, false),
      ],
      // Which server keeps up shows in one repetition; `--reps` does not change it.
      reps: 1,
      serverFlags: [],
      params: q(
        { clients: 1000, rate: 100_000, warmupMs: 1000, durationMs: 2000, quietMs: 300 },
        { clients: 10, rate: 1000, warmupMs: 150, durationMs: 300, quietMs: 0 },
      ),
    },
    {
      name: 'idle',
      title: q(
        'Idle connections on one node: 1k, 5k and 20k (V8 defaults; heartbeat every 5 s)',
        'Idle connections on one node: 20 and 50 (V8 defaults; heartbeat every 5 s)',
      ),
      targets: THIN_ONLY,
      steps: q([1000, 5000, 20_000], [20, 50]),
      stepUnit: 'connections',
      metrics: [
        // The step's count, or fewer where the open-files limit allows no more (a note says so).
        m('held', 'connections held', 0, false),
        m('rssKBPerConn', 'RSS KB/conn', 1, false),
        m('heapKBPerConn', 'heap KB/conn', 1, false),
        m('youngKBPerConn', 'V8 young generation KB/conn', 1, false),
        m('connectionsPerClient', 'server connections/client', 2, false),
        m('connectsPerSec', 'connections/s', 0, false),
        m('idleCpuPct', 'server CPU % idle', 1, false),
        m('loadCpuPct', 'load generator CPU % idle', 0, false),
      ],
      reps: 1,
      // V8's defaults, as users run; the `memory` scenario is the fixed-young-generation reading.
      serverFlags: [],
      // Both heartbeats every 5 s (defaults: Parley 20 s, socket.io 25 s): a window of one period
      // sees every connection's PING and PONG once. Readings wait a whole period after the last
      // connection (`settleMs`): a client whose PONG goes in a POST (SSE, socket.io's polling)
      // opens a second connection for it at its first PING, and holds it from then on.
      serverArgs: q(['--ping-interval=5000'], QUICK_GROWTH_ARGS),
      params: q(
        { warmup: 100, parallel: 100, settleMs: 6000, idleMs: 5000 },
        { warmup: 2, parallel: 10, settleMs: 100, idleMs: 100 },
      ),
    },
    {
      name: 'fanout',
      title: q(
        'One broadcast to 100, 1k and 10k sockets in a room',
        'One broadcast to 5 and 10 sockets in a room',
      ),
      targets: THIN_ONLY,
      steps: q([100, 1000, 10_000], [5, 10]),
      stepUnit: 'recipients',
      metrics: [
        // The step's count, or fewer where the open-files limit allows no more (a note says so).
        m('recipients', 'recipients', 0, false),
        m('emitUs', 'emit call µs', 0),
        m('flushUs', 'emit + writes µs', 0),
        m('usPerDelivery', 'server µs/delivery', 2),
        m('allReceivedMs', 'until all got it ms', 1),
        m('loadCpuPct', 'load generator CPU %', 0, false),
      ],
      reps: 1,
      serverFlags: [],
      // Each step: `broadcasts` broadcasts, one at a time, each once the last one reached everyone,
      // after a pause of `quietMs` once the step's clients are in.
      params: q({ broadcasts: 10, parallel: 100, quietMs: 300 }, { broadcasts: 3, parallel: 10, quietMs: 0 }),
      serverArgs: q([], QUICK_GROWTH_ARGS),
    },
    {
      name: 'size',
      title: q(
        'Echo of 64 B, 64 KB and 1 MB messages (10 clients; 10, 2 and 1 in flight each)',
        'Echo of 64 B, 64 KB and 1 MB messages (2 clients)',
      ),
      // Parley's own client is left out: it refuses packets past 1 000 000 bytes on its first
      // transport whatever maxPayload the server's OPEN states (docs/benchmarks.md, Method).
      targets: [
        'ws',
        'parley-thin-websocket',
        'socketio-websocket',
        'parley-thin-sse',
        'parley-thin-polling',
        // What Parley's SSE and polling rows compare with: socket.io has no SSE.
        'socketio-thin-polling',
      ],
      steps: [64, 65_536, 1_048_576],
      stepUnit: 'bytes',
      metrics: [
        m('msgsPerSec', 'msgs/s', 0),
        m('mbPerSec', 'MB/s', 1),
        m('cpuNsPerByte', 'server CPU ns/byte', 2),
        m('rttP50Ms', 'RTT p50 ms', 2),
        m('loadCpuPct', 'load generator CPU %', 0, false),
      ],
      reps: 1,
      serverFlags: [],
      // 1 MB passes every server's default limit (Parley 1 000 000 bytes, socket.io's
      // maxHttpBufferSize 1e6): all three get 2 MiB. Parley's slow-consumer limit (8 MiB of
      // unacknowledged packets) is raised too: a client acknowledging after 200 ms or 32
      // packets holds more than 8 MiB of 1 MB echoes.
      serverArgs: q(['--max-payload=2097152', '--max-buffered-bytes=67108864'], QUICK_GROWTH_ARGS),
      // minEchoes: a step's window lasts durationMs and until that many echoes came back, so
      // that its readings are of some megabytes of 1 MB echoes however busy the machine (a
      // quick window of 200 ms holds one or two on a busy machine, or none).
      params: q(
        { clients: 10, warmupMs: 300, durationMs: 1500, minEchoes: 10 },
        { clients: 2, warmupMs: 50, durationMs: 200, minEchoes: 4 },
      ),
    },
    {
      name: 'memory',
      title: q(
        'Server memory per idle connection, 2000 connections (after GC)',
        'Server memory per idle connection, 20 connections (after GC)',
      ),
      targets: TARGETS,
      metrics: [m('rssKBPerConn', 'RSS KB/conn', 1, false), m('heapKBPerConn', 'heap KB/conn', 1, false)],
      reps: 1,
      // The same small young generation for every server: V8 grows its semi-spaces while many
      // objects survive scavenges, as they do while thousands of connections open, and keeps
      // them through GC; unpinned, RSS per connection would measure that growth, not what a
      // connection keeps (docs/benchmarks.md, Method).
      // --quick: V8's defaults, so that the servers the echoes started serve this one too (what
      // a quick run checks is that the scenario works, not what it reads).
      serverFlags: q(['--max-semi-space-size=1'], []),
      // quietMs: the pause after the warm-up batch, before the first reading.
      params: q(
        { clients: 2000, warmup: 100, settleMs: 1000, quietMs: 300 },
        { clients: 20, warmup: 2, settleMs: 50, quietMs: 0 },
      ),
    },
    {
      name: 'setup',
      title: q(
        'Connection setup: 300 clients, 25 connecting at a time',
        'Connection setup: 10 clients, 5 at a time',
      ),
      targets: TARGETS,
      metrics: [m('connectsPerSec', 'connections/s', 0)],
      // The idle scenario measures connect rates too, by thousands.
      reps: 1,
      serverFlags: [],
      params: q({ connections: 300, parallel: 25 }, { connections: 10, parallel: 5 }),
    },
    {
      name: 'fallback',
      title: 'Time to connected with the default client, WebSocket passing, refused (400) or hanging',
      targets: ['parley', 'socketio'],
      metrics: [
        m('passMs', 'ws passes, ms', 0, false),
        m('rejectMs', 'ws refused, ms', 0, false),
        m('hangMs', 'ws hangs, ms', 0, false),
      ],
      reps: 1,
      serverFlags: [],
      params: q({ samples: 3 }, { samples: 1 }),
    },
    {
      name: 'metrics',
      title: q(
        'Metrics: echo over WebSocket at a steady 10 000 messages/s (50 clients), without the metrics option and with a prom-client registry',
        'Metrics: echo over WebSocket at a steady 500 messages/s (4 clients), without the metrics option and with a prom-client registry',
      ),
      // A server process of its own for each: a process that never counts keeps the no-op
      // object alone at every call site, as an application without the option does.
      targets: ['parley-websocket', 'parley-metrics'],
      metrics: [
        m('cpuUsPerMsg', 'server CPU µs/msg', 2, false),
        m('msgsPerSec', 'msgs/s', 0, false),
        m('echoedShare', 'echoed', 3, false),
        m('rttP50Ms', 'RTT p50 ms', 2, false),
        m('rttP99Ms', 'RTT p99 ms', 2, false),
        m('loadCpuPct', 'load generator CPU %', 0, false),
      ],
      // What is reported is a difference of two noisy readings: at least five pairs of them.
      reps: q(Math.max(reps, 5), reps),
      serverFlags: [],
      params: q(
        { clients: 50, rate: 10_000, warmupMs: 1000, durationMs: 2000 },
        { clients: 4, rate: 500, warmupMs: 100, durationMs: 300 },
      ),
    },
    {
      name: 'cluster',
      title: q(
        'Three nodes over Redis behind nginx (round-robin): broadcast from one node to 1000 clients, 5000 deliveries/s',
        'Three nodes over Redis behind nginx (round-robin): broadcast from one node to 12 clients, 120 deliveries/s',
      ),
      targets: ['parley-websocket', 'socketio-websocket'],
      metrics: [
        m('deliveriesPerSec', 'deliveries/s', 0, false),
        m('latencyP50Ms', 'delivery p50 ms', 2, false),
        m('latencyP99Ms', 'delivery p99 ms', 2, false),
        m('cpuUsPerDelivery', 'server CPU µs/delivery (3 nodes)', 2, false),
        m('redisUsPerDelivery', 'Redis CPU µs/delivery', 2, false),
        m('nginxUsPerDelivery', 'nginx CPU µs/delivery', 2, false),
        m('deliveredShare', 'delivered', 3, false),
        m('loadCpuPct', 'load generator CPU %', 0, false),
      ],
      // Each repetition starts five processes and opens a thousand connections through nginx.
      reps: Math.min(reps, 2),
      serverFlags: [],
      params: q(
        { nodes: 3, settleMs: 3000, clients: 1000, rate: 5000, durationMs: 3000 },
        { nodes: 3, settleMs: 3000, clients: 12, rate: 120, durationMs: 300 },
      ),
    },
    {
      name: 'cluster-http',
      title: q(
        'Three nodes behind nginx without sticky sessions: 60 clients over HTTP transports (correctness, not speed)',
        'Three nodes behind nginx without sticky sessions: 6 clients over HTTP transports (correctness, not speed)',
      ),
      targets: ['socketio', 'socketio-polling', 'parley-sse', 'parley-polling'],
      metrics: [
        m('connected', 'connected', 0, false),
        m('failed', 'failed to connect', 0, false),
        m('http400', '400 answers (nginx log)', 0, false),
        m('receivedShare', 'broadcasts received', 3, false),
        m('ackedShare', 'acks answered', 3, false),
        m('connectedAtEnd', 'still connected at the end', 0, false),
      ],
      reps: 1,
      serverFlags: [],
      params: q(
        { nodes: 3, settleMs: 3000, clients: 60, connectTimeoutMs: 10_000, ticks: 5, tickMs: 200 },
        { nodes: 3, settleMs: 3000, clients: 6, connectTimeoutMs: 5000, ticks: 2, tickMs: 100 },
      ),
    },
  ]
}
