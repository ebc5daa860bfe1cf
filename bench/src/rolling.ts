// `pnpm bench:rolling`: a rolling restart under load. Three Parley nodes (test/cluster/node.ts)
// on one Redis behind nginx round-robin, 1000 WebSocket clients each sending a numbered message
// and asking for one back every `--every` ms; then one rolling round (each node in turn drains
// on SIGTERM, a new process takes its port). Reports messages lost and duplicated each way,
// the time from CLOSE 'server handoff' to the OPEN elsewhere (p50/p99), and the Redis commands
// the handoffs added per drained session (INFO commandstats over the round, less the same
// length of steady traffic measured just before). Prints a Markdown table for
// docs/benchmarks.md.
//
//   pnpm bench:rolling [--clients 1000] [--every 500] [--ping 15000]
import { parseArgs } from 'node:util'
import { connect, type Socket } from '@parley/client'
import { createClient } from 'redis'
import { type Cluster, startCluster } from '../../test/cluster/cluster.ts'
import type { ClusterNode } from '../../test/cluster/nodes.ts'
import { handoffSniffer } from '../../test/cluster/sniff.ts'
import { machine, writeDocs } from './report.ts'
import { quantile, sleep } from './stats.ts'

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '1000' },
    every: { type: 'string', default: '500' },
    ping: { type: 'string', default: '15000' },
    // Also writes the result into this file's rolling section (docs/benchmarks.md, by `pnpm bench`).
    out: { type: 'string' },
  },
})
const clients = Number(values.clients)
const every = Number(values.every)
const ping = Number(values.ping)
if (!(clients >= 1 && clients <= 5000 && every >= 20 && ping >= 100))
  throw new TypeError('--clients 1..5000, --every >= 20, --ping >= 100')

interface Thin {
  socket: Socket
  sent: number
  downs: number[]
  closedAt: number | undefined
  resumeMs: number[]
  disconnects: number
}

/** Each Redis command's call count (INFO commandstats), by command. */
async function redisCalls(url: string): Promise<Record<string, number>> {
  const redis = createClient({ url })
  await redis.connect()
  try {
    const info = await redis.info('commandstats')
    const calls: Record<string, number> = {}
    for (const match of info.matchAll(/cmdstat_([^:]+):calls=(\d+)/g)) calls[match[1]!] = Number(match[2])
    return calls
  } finally {
    await redis.close()
  }
}

/** `after - before`, by command. */
function callsBetween(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const delta: Record<string, number> = {}
  for (const [command, n] of Object.entries(after)) delta[command] = n - (before[command] ?? 0)
  return delta
}

const total = (calls: Record<string, number>) => Object.values(calls).reduce((a, b) => a + b, 0)

/** Waits for `check`, at most `ms`; false if it never held. */
async function waitFor(check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) return false
    await sleep(50)
  }
  return true
}

/** What the client applications heard besides messages, by kind: what to look at when a run goes wrong. */
const heard: Record<string, number> = {}
const count = (tally: Record<string, number>, key: string) => {
  tally[key] = (tally[key] ?? 0) + 1
}

/**
 * How every node process ended (or that it still runs) with the end of its stderr, and nginx's
 * error log by kind of message: what says whether a node died, was killed mid-drain or never
 * took its port when clients end up without a node.
 */
function printProcesses(nodes: readonly ClusterNode[], nginxErrors: string): void {
  for (const node of nodes) {
    const errors = node.errors().trim()
    console.log(
      `node ${node.name} pid ${node.pid} port ${node.port}: ${node.exit() ?? 'running'}${errors ? `; stderr: ${errors.slice(-600)}` : ''}`,
    )
  }
  const kinds: Record<string, number> = {}
  for (const line of nginxErrors.split('\n')) {
    // "2026/11/30 03:10:00 [error] 123#123: *456 connect() failed (111: ...) while connecting
    // to upstream, client: ..., upstream: ...": the kind is the level and the message.
    const match = /\[(\w+)\] \d+#\d+: (?:\*\d+ )?([^,]*)/.exec(line)
    if (match) count(kinds, `${match[1]} ${match[2]}`)
  }
  console.log(`nginx error log: ${JSON.stringify(kinds)}`)
}

async function main(): Promise<void> {
  const started = Date.now()
  // Two nginx connections per client (to the client, to a node), and room for the resumes.
  // A heartbeat near the server's default (a ping every 15 s, 15 s to answer, against 20 s and
  // 15 s) and the default retry spread (1 s), as a deploy runs them: the cluster tests' 1 s ping would turn every event-loop stall of a
  // node busy with claims into a round of ping timeouts, which a deploy would not see.
  const cluster: Cluster = await startCluster(
    ['n1', 'n2', 'n3'],
    { ping, retrySpread: 1000 },
    { workerConnections: 4 * clients + 1024 },
  )
  const thins: Thin[] = []
  let running = true
  try {
    // Connected a batch at a time: a thousand handshakes at once measure nginx's accept queue.
    for (let i = 0; i < clients; i++) {
      const thin: Thin = {
        socket: undefined as unknown as Socket,
        sent: 0,
        downs: [],
        closedAt: undefined,
        resumeMs: [],
        disconnects: 0,
      }
      thin.socket = connect(`${cluster.url}/parley`, {
        transports: ['websocket'],
        ...handoffSniffer(() => {
          thin.closedAt = performance.now()
        }),
      })
      thin.socket.on('down', (n: number) => thin.downs.push(n))
      thin.socket.on('disconnect', (reason: string) => {
        thin.disconnects++
        count(heard, `disconnect ${reason}`)
      })
      // The end of the message names the platform's reason (ECONNREFUSED, an HTTP status).
      thin.socket.on('connect_error', (error: { code: string; message: string }) =>
        count(heard, `connect_error ${error.code} ${error.message.slice(-48)}`),
      )
      thin.socket.on('transport', (_now, _before, why) => {
        if (why !== 'resume' || thin.closedAt === undefined) return
        thin.resumeMs.push(performance.now() - thin.closedAt)
        thin.closedAt = undefined
      })
      thins.push(thin)
      if (i % 100 === 99) await waitFor(() => thins.every((t) => t.socket.connected), 30_000)
    }
    if (!(await waitFor(() => thins.every((t) => t.socket.connected), 30_000)))
      throw new Error('not every client connected within 30 s')
    console.log(`${clients} clients connected`)
    // The new processes load (the slow part of a start) while the cluster runs.
    for (let i = 0; i < cluster.nodes.length; i++) cluster.prepare(i)

    // Steady traffic: each client a numbered message up and a request for one down per tick,
    // spread over the tick.
    const traffic = thins.map(async (t, i) => {
      await sleep((i * every) / clients)
      for (let k = 0; running && k < 1_000_000; k++) {
        t.socket.emit('seq', ++t.sent)
        t.socket.emit('downs', { from: t.sent, count: 1 })
        await sleep(every)
      }
    })

    // The same length of steady traffic without restarts, for the Redis baseline.
    await sleep(5000)
    const roundStart = performance.now()
    const before = await redisCalls(cluster.redis.url)
    const stopped = []
    for (let i = 0; i < cluster.nodes.length; i++) {
      stopped.push(await cluster.restart(i))
      console.log(`restarted ${cluster.nodes[i]!.name}`)
    }
    const roundMs = performance.now() - roundStart
    const during = callsBetween(before, await redisCalls(cluster.redis.url))
    const baseStart = await redisCalls(cluster.redis.url)
    await sleep(roundMs)
    const baseline = callsBetween(baseStart, await redisCalls(cluster.redis.url))

    running = false
    await Promise.all(traffic)
    await waitFor(() => thins.every((t) => t.downs.length >= t.sent), 15_000)

    // Up: what each session's node counted (socket.data travels with the handoff).
    let upLost = 0
    let upDup = 0
    // A client whose node does not answer its report within 15 s (not connected at the end):
    // counted apart, its up direction unknown.
    let unreported = 0
    await Promise.all(
      thins.map(async (t) => {
        try {
          const report = await (
            t.socket.timeout(15_000) as unknown as {
              emitWithAck(e: string): Promise<{ last: number; count: number }>
            }
          ).emitWithAck('seqReport')
          upLost += Math.max(0, t.sent - report.count)
          upDup += Math.max(0, report.count - t.sent)
        } catch {
          unreported++
        }
      }),
    )
    let downLost = 0
    let downDup = 0
    for (const t of thins) {
      const seen = new Set(t.downs)
      downDup += t.downs.length - seen.size
      for (let n = 1; n <= t.sent; n++) if (!seen.has(n)) downLost++
    }
    const restored = stopped
      .concat(cluster.nodes)
      .reduce((n, p) => n + p.lines().filter((l) => l.startsWith('event restored ')).length, 0)
    const resumeMs = thins.flatMap((t) => t.resumeMs)
    const sent = thins.reduce((n, t) => n + t.sent, 0)
    const row = {
      clients,
      messagesEachWay: sent,
      upLost,
      upDuplicated: upDup,
      downLost,
      downDuplicated: downDup,
      disconnects: thins.reduce((n, t) => n + t.disconnects, 0),
      connectedAtEnd: thins.filter((t) => t.socket.connected).length,
      unreported,
      handedOff: restored,
      resumeP50Ms: Math.round(quantile(resumeMs, 0.5)),
      resumeP99Ms: Math.round(quantile(resumeMs, 0.99)),
      redisCommandsPerSession:
        restored > 0 ? Math.round(((total(during) - total(baseline)) / restored) * 10) / 10 : Number.NaN,
      roundSeconds: Math.round(roundMs / 100) / 10,
    }
    console.log(JSON.stringify(row))
    console.log(
      `heard: ${JSON.stringify(heard)}; still reconnecting at the end: ${thins.filter((t) => !t.socket.connected && t.socket.active).length}`,
    )
    const table = [
      '| clients | messages each way | lost (up / down) | duplicated (up / down) | disconnects | sessions handed off | CLOSE to OPEN p50 / p99 | extra Redis commands per handed-off session | round |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
      `| ${row.clients} | ${row.messagesEachWay} | ${row.upLost} / ${row.downLost} | ${row.upDuplicated} / ${row.downDuplicated} | ${row.disconnects} | ${row.handedOff} | ${row.resumeP50Ms} ms / ${row.resumeP99Ms} ms | ${row.redisCommandsPerSession} | ${row.roundSeconds} s |`,
    ].join('\n')
    console.log(table)
    console.log(`(${((Date.now() - started) / 1000).toFixed(0)} s in all)`)
    // Which commands the handoffs added: the round's calls less the baseline's, per handed-off session.
    const extra = Object.entries(during)
      .map(([command, n]) => [command, (n - (baseline[command] ?? 0)) / Math.max(1, restored)] as const)
      .filter(([, n]) => Math.abs(n) >= 0.05)
      .sort((a, b) => b[1] - a[1])
      .map(([command, n]) => `${command} ${n.toFixed(1)}`)
    console.log(`extra Redis commands per handed-off session, by command: ${extra.join(', ')}`)
    printProcesses(stopped.concat(cluster.nodes), cluster.nginx.errors())
    if (values.out) {
      const m = machine()
      const heardLine = Object.entries(heard)
        .map(([what, n]) => `${what} (${n})`)
        .join('; ')
      writeDocs(
        values.out,
        [
          `Run of ${new Date().toISOString().slice(0, 10)}: ${m.cpu}, ${m.cores} cores, Node ${process.version}, load average ${m.load} at the start; ${clients} WebSocket clients, a message each way every ${every} ms, heartbeat ${ping} ms.`,
          '',
          table,
          '',
          `- Extra Redis commands per handed-off session, by command: ${extra.join(', ') || 'none'}.`,
          `- What the client applications heard besides messages: ${heardLine || 'nothing'}.`,
        ].join('\n'),
        'rolling',
      )
    }
  } finally {
    running = false
    for (const t of thins) t.socket.disconnect()
    await cluster.stop()
  }
}

await main()
