// What a run measures, and how much of it: the default run (under five minutes on two cores)
// and `--quick` (tiny counts, one repetition, seconds: for the test that keeps the harness alive).
// The multi-node scenarios (`cluster`, `cluster-http`) run three server processes over one
// Redis behind nginx; `--only cluster` selects both. `metrics` runs the echo workload on Parley
// without the metrics option and with a prom-client registry: what counting costs.
import type { ClientKind, Target } from './clients.ts'

export type ScenarioName =
  | 'echo'
  | 'acks'
  | 'broadcast'
  | 'memory'
  | 'setup'
  | 'fallback'
  | 'cluster'
  | 'cluster-http'
  | 'metrics'

export const TARGETS: readonly Target[] = [
  'ws',
  'parley-websocket',
  'parley-sse',
  'parley-polling',
  'socketio-websocket',
  'socketio-polling',
]

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
}

/** Server nodes of a scenario: 1, or `params.nodes` for the multi-node ones. */
export const nodesOf = (s: ScenarioDef): number => s.params.nodes ?? 1

const m = (key: string, label: string, digits: number, ratio = true): MetricDef => ({
  key,
  label,
  digits,
  ratio,
})

export function scenarios(quick: boolean, reps: number): ScenarioDef[] {
  const q = <T>(full: T, small: T) => (quick ? small : full)
  const roundTrip = q(
    { clients: 50, inFlight: 10, warmupMs: 500, durationMs: 1500 },
    { clients: 4, inFlight: 2, warmupMs: 100, durationMs: 300 },
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
      targets: TARGETS,
      metrics: rtMetrics,
      reps,
      serverFlags: [],
      params: roundTrip,
    },
    {
      name: 'acks',
      title: `Acks (emitWithAck answered by the server): ${roundTrip.clients} clients, ${roundTrip.inFlight} in flight each`,
      targets: TARGETS,
      metrics: rtMetrics,
      reps,
      serverFlags: [],
      params: roundTrip,
    },
    {
      name: 'broadcast',
      title: q(
        'Broadcast to 1000 clients in a room, 25 000 deliveries/s',
        'Broadcast to 10 clients in a room, 250 deliveries/s',
      ),
      targets: TARGETS,
      metrics: [
        m('latencyP50Ms', 'delivery p50 ms', 2),
        m('latencyP99Ms', 'delivery p99 ms', 2),
        m('cpuUsPerDelivery', 'server CPU µs/delivery', 2),
        m('eventLoopDelayP99Ms', 'event-loop delay p99 ms', 2),
        m('deliveredShare', 'delivered', 3, false),
        m('loadCpuPct', 'load generator CPU %', 0, false),
      ],
      reps,
      serverFlags: [],
      params: q(
        { clients: 1000, rate: 25_000, durationMs: 2000 },
        { clients: 10, rate: 250, durationMs: 400 },
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
      serverFlags: ['--max-semi-space-size=1'],
      params: q({ clients: 2000, warmup: 100, settleMs: 1000 }, { clients: 20, warmup: 2, settleMs: 200 }),
    },
    {
      name: 'setup',
      title: q(
        'Connection setup: 300 clients, 25 connecting at a time',
        'Connection setup: 10 clients, 5 at a time',
      ),
      targets: TARGETS,
      metrics: [m('connectsPerSec', 'connections/s', 0)],
      reps,
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
