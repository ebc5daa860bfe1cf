// A rolling restart under steady traffic, on a cluster of ./cluster.ts: clients on every
// transport send numbered messages (some with acks), ask for numbered messages back, shout
// numbered broadcasts to a room and hear each node's numbered ticks; meanwhile each node in
// turn drains (SIGTERM) and a new process takes its port. What every client saw is returned
// for the test to check, with the time from each CLOSE 'server handoff' to the OPEN elsewhere.
import type { Socket } from '@parley/client'
import type { TransportName } from '@parley/protocol'
import { client, next, until } from '../../packages/client/test/helpers.js'
import { ask, type Cluster, nudge, sleep } from './cluster.js'
import type { ClusterNode } from './nodes.js'
import { handoffSniffer } from './sniff.js'

export interface RollingOptions {
  transports: readonly TransportName[]
  /** Clients per transport. */
  perTransport: number
  /** Full rounds: each node restarted once per round. */
  rounds: number
  /** Each client's traffic tick, in ms. */
  every: number
  /** Told of each restart as it ends. */
  progress?: (line: string) => void
}

/** One client's view of the run. */
export interface ClientLog {
  transport: TransportName
  socket: Socket
  /** Numbers sent with `seq` (1..sent), and how their acks ended. */
  sent: number
  acks: { ok: number; moved: number; other: string[] }
  /** Numbers asked for with `downs` (1..asked), and the `down` numbers heard, in order. */
  asked: number
  downs: number[]
  /** Numbers shouted to the room (1..shouted). */
  shouted: number
  /** Shouts heard, by shouting client, in order. */
  heard: Map<number, number[]>
  /** Ticks heard, by source (node process), in order. */
  ticks: Map<string, number[]>
  connects: number
  disconnects: string[]
  /** transport_error and connect_error codes, in order. */
  errors: string[]
  /** `socket.recovered` at each resume the application heard of (a `transport` event). */
  resumes: boolean[]
  /**
   * HELLOs that asked to resume the session, seen on the wire: those the application heard of
   * (`resumes`), and those the client gave up on, told (a `transport_error`) or not (within the
   * quiet time after a handoff), which a node may have answered by restoring the session.
   */
  resumeHellos: number
  /**
   * Handoff CLOSEs seen on the wire. Fewer than the handoffs when a CLOSE never reached the
   * client (its poll was cut as the node closed): it resumes all the same.
   */
  handoffs: number
  /** Of those, the CLOSEs of a node that relayed the session to its node as it closed (no move). */
  relayed: number
  /**
   * For each handoff: ms from the CLOSE to the OPEN (the next resume). One fewer when a relaying
   * node's CLOSE opened the stream of a resume under way (see the test).
   */
  resumeMs: number[]
  /**
   * When (wall clock, to set beside the nodes' lines) each handoff CLOSE and resume came, and
   * each shout or tick that did not follow the one before it: read when a check fails.
   */
  timeline: string[]
}

export interface RollingRun {
  clients: ClientLog[]
  /** Every node process that ran, the ones stopped first: their stdout lines. */
  processes: ClusterNode[]
  restarts: number
}

/** Starts the clients and the traffic, restarts the nodes, stops the traffic: see above. */
export async function rollingRestart(cluster: Cluster, options: RollingOptions): Promise<RollingRun> {
  // The new processes of the first restarts load while the clients connect.
  for (let i = 0; i < cluster.nodes.length; i++) cluster.prepare(i)
  const logs: ClientLog[] = []
  for (const transport of options.transports) {
    for (let k = 0; k < options.perTransport; k++) {
      logs.push(await startClient(cluster, transport))
      // The next handshake on the next node: sessions spread over all three.
      await nudge(cluster)
    }
  }
  for (const log of logs) {
    await ask(log.socket, 'join', 'all')
    await ask(log.socket, 'join', 'ticks')
  }

  let running = true
  const traffic = logs.map((log, index) => talk(log, index, options.every, () => running))
  const stopped: ClusterNode[] = []
  let restarts = 0
  try {
    for (let round = 0; round < options.rounds; round++) {
      for (let i = 0; i < cluster.nodes.length; i++) {
        // Traffic flows before each restart: every client has been answered lately.
        const waited = performance.now()
        const marks = logs.map((l) => l.downs.length)
        await until(
          () => logs.every((l, k) => l.downs.length > marks[k]! + 5),
          15_000,
          'traffic before a restart',
        )
        const started = performance.now()
        const steps: string[] = [`traffic ${(started - waited).toFixed(0)}`]
        stopped.push(await cluster.restart(i, (step, ms) => steps.push(`${step} ${ms.toFixed(0)}`)))
        restarts++
        options.progress?.(
          `restart ${restarts} (${cluster.nodes[i]!.name}) at ${(started / 1000).toFixed(1)} s: ${(performance.now() - started).toFixed(0)} ms (${steps.join(', ')} ms)`,
        )
      }
    }
    const marks = logs.map((l) => l.downs.length)
    await until(
      () => logs.every((l, k) => l.downs.length > marks[k]! + 5),
      15_000,
      'traffic after the rounds',
    )
  } finally {
    running = false
    await Promise.all(traffic)
  }
  // Everything asked for arrives: the numbered ones, the shouts, the acks.
  const shouts = logs.map((l) => l.shouted)
  await until(
    () =>
      logs.every(
        (l) =>
          l.downs.length >= l.asked &&
          l.acks.ok + l.acks.moved + l.acks.other.length === Math.floor(l.sent / 5) &&
          shouts.every((s, from) => (l.heard.get(from)?.length ?? 0) >= s),
      ),
    15_000,
    'every message after the traffic stopped',
  ).catch(() => {
    // The test's assertions then say what is missing, client by client.
  })
  return { clients: logs, processes: [...stopped, ...cluster.nodes], restarts }
}

async function startClient(cluster: Cluster, transport: TransportName): Promise<ClientLog> {
  let closedAt: number | undefined
  const log: ClientLog = {
    transport,
    // Set just below: the sniffer needs `log` first.
    socket: undefined as unknown as Socket,
    sent: 0,
    acks: { ok: 0, moved: 0, other: [] },
    asked: 0,
    downs: [],
    shouted: 0,
    heard: new Map(),
    ticks: new Map(),
    connects: 0,
    disconnects: [],
    errors: [],
    resumes: [],
    resumeHellos: 0,
    handoffs: 0,
    relayed: 0,
    resumeMs: [],
    timeline: [],
  }
  const socket = client(cluster.url, {
    transports: [transport],
    connectTimeout: 3000,
    // The client's own pace (the test helper's is much faster): the rounds a client retries
    // quietly after a handoff then span the second for which nginx leaves out a node that
    // refused, as they do in production.
    reconnectionDelay: 500,
    reconnectionDelayMax: 10_000,
    ackTimeout: 10_000,
    ...handoffSniffer(
      (relayed) => {
        log.handoffs++
        if (relayed) log.relayed++
        closedAt = performance.now()
        log.timeline.push(`${Date.now()} handoff CLOSE`)
        log.errors.push(`${at()} handoff`)
      },
      () => log.resumeHellos++,
    ),
  })
  log.socket = socket
  socket.on('connect', () => log.connects++)
  socket.on('disconnect', (reason: string) => {
    log.disconnects.push(reason)
    log.errors.push(`${at()} disconnect: ${reason}`)
  })
  // Why attempts failed, for a failing test's message (a draining node answers 503).
  // On the clock of the progress lines (see rollingRestart).
  const at = () => `${(performance.now() / 1000).toFixed(1)} s`
  socket.on('transport_error', (t: TransportName, e: { code: string; message: string }) =>
    log.errors.push(`${at()} ${t}: ${e.code} (${e.message})`),
  )
  socket.on('connect_error', (e: { code: string }) => log.errors.push(`${at()} connect_error: ${e.code}`))
  socket.on('transport', (_now: TransportName, _before: TransportName, why: string) => {
    if (why !== 'resume') return
    log.resumes.push(socket.recovered)
    log.timeline.push(`${Date.now()} resume`)
    if (closedAt !== undefined) log.resumeMs.push(performance.now() - closedAt)
    closedAt = undefined
  })
  socket.on('down', (n: number) => log.downs.push(n))
  socket.on('shouted', (s: { from: number; n: number }) => {
    const list = log.heard.get(s.from) ?? []
    if (s.n !== (list[list.length - 1] ?? 0) + 1)
      log.timeline.push(`${Date.now()} from ${s.from}: ${list[list.length - 1]} then ${s.n}`)
    list.push(s.n)
    log.heard.set(s.from, list)
  })
  socket.on('tick', (t: { source: string; n: number }) => {
    const list = log.ticks.get(t.source) ?? []
    if (list.length > 0 && t.n !== list[list.length - 1]! + 1)
      log.timeline.push(`${Date.now()} tick ${t.source}: ${list[list.length - 1]} then ${t.n}`)
    list.push(t.n)
    log.ticks.set(t.source, list)
  })
  await next(socket, 'connect', 10_000)
  return log
}

/**
 * One client's steady traffic until `running()` says stop: each tick a numbered `seq` (every
 * fifth with an ack), a request for two numbered `down`s, and every third tick a numbered shout
 * to the room `all`.
 */
async function talk(log: ClientLog, index: number, every: number, running: () => boolean): Promise<void> {
  const pending: Promise<void>[] = []
  for (let tick = 0; running() && tick < 100_000; tick++) {
    const n = ++log.sent
    if (n % 5 === 0) {
      pending.push(
        (
          log.socket.timeout(15_000) as unknown as {
            emitWithAck(e: string, v: number): Promise<{ n: number }>
          }
        )
          .emitWithAck('seq', n)
          .then(
            (reply) => {
              if (reply.n === n) log.acks.ok++
              else log.acks.other.push(`reply ${reply.n} to ${n}`)
            },
            (error: { code?: string; message?: string }) => {
              if (error.code === 'PARLEY_SESSION_MOVED') log.acks.moved++
              else log.acks.other.push(`${error.code}: ${error.message}`)
            },
          ),
      )
    } else log.socket.emit('seq', n)
    log.socket.emit('downs', { from: log.asked + 1, count: 2 })
    log.asked += 2
    if (tick % 3 === 0) log.socket.emit('shout', { room: 'all', from: index, n: ++log.shouted })
    await sleep(every)
  }
  await Promise.all(pending)
}
