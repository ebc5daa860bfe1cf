// `pnpm -F @parley/bench poll-count`: what an echo over long-polling asks of the server, counted
// rather than timed. One Parley server (server.ts, `--count-wire`) in a process of its own; in
// this process, `--clients` clients of each kind echo `--messages` messages each, `--in-flight`
// at a time (the echo scenario's pattern, bounded by count instead of time). The server counts
// what reaches its HTTP port from the moment every client is connected until the last echo came
// back (wire-count.ts): requests by method, packets per POST and per GET answer by type, bytes.
// Printed per echoed message, for the Parley client (over `node:http`, as the bench runs it) and
// for the thin client (thin-parley.ts), which follows docs/protocol.md at the least cost.
//
//   pnpm -F @parley/bench poll-count [--clients 20] [--messages 200] [--in-flight 10]
//     [--client parley-polling] [--client parley-thin-polling] [--json]
//
// `PARLEY_BENCH_SERVER_FLAGS` adds V8 flags to the server, as for `pnpm bench` (`--cpu-prof
// --cpu-prof-dir=<dir>`: a profile of the server for the very exchange the counts describe).
import type { ChildProcess } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { type BenchClient, type ClientKind, createClient } from './clients.ts'
import { compileChildren } from './compiled-children.ts'
import { forkReady } from './fork-ready.ts'
import { peer } from './rpc.ts'
import { now, sleep } from './stats.ts'
import type { PacketCounts, WireCounts } from './wire-count.ts'

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '20' },
    messages: { type: 'string', default: '200' },
    'in-flight': { type: 'string', default: '10' },
    client: { type: 'string', multiple: true, default: ['parley-polling', 'parley-thin-polling'] },
    json: { type: 'boolean', default: false },
  },
})
const clients = Number(values.clients)
const messages = Number(values.messages)
const inFlight = Number(values['in-flight'])
if (!(clients >= 1 && messages >= 1 && inFlight >= 1))
  throw new TypeError('--clients, --messages and --in-flight must be at least 1')
const kinds = values.client as ClientKind[]
for (const kind of kinds)
  if (!kind.startsWith('parley') || !kind.endsWith('polling'))
    throw new TypeError(`--client ${kind}: a Parley polling client (parley-polling, parley-thin-polling)`)

/** What the server counted, and the echo's size and (for reading only) its time and CPU. */
type Run = WireCounts & { echoed: number; ms: number; cpuUs: number; clientCpuUs: number }

/** The longest a run may take: past it, the echo is broken, not slow. */
const LIMIT_MS = 60_000

const benchDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
const scripts = await compileChildren(benchDir, ['server.ts'])
const children = new Set<ChildProcess>()
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL')
})

/** Runs the bounded echo with `kind` clients against a fresh server; resolves with its counts. */
async function count(kind: ClientKind): Promise<Run> {
  const { child, ready } = await forkReady(
    scripts.get('server.ts')!,
    'server.ts',
    ['parley', '--count-wire'],
    (process.env.PARLEY_BENCH_SERVER_FLAGS ?? '').split(' ').filter(Boolean),
    benchDir,
    children,
  )
  const server = peer(child)
  const url = `http://127.0.0.1:${ready as number}`
  const open: BenchClient[] = []
  try {
    for (let i = 0; i < clients; i++) open.push(createClient(kind, { url, timeoutMs: 20_000, fetch: 'http' }))
    await Promise.all(open.map((c) => c.ready))
    await server.call('wire-reset')
    const cpu0 = await server.call<number>('cpu')
    const clientCpu0 = process.cpuUsage()
    let echoed = 0
    let nextId = 1
    const start = now()
    for (const c of open) {
      let sent = 0
      const send = () => {
        if (sent >= messages) return
        sent++
        c.emit('echo', { id: nextId++, t: now(), text: 'hello, round trip' })
      }
      c.on('echo', () => {
        echoed++
        send()
      })
      for (let i = 0; i < inFlight; i++) send()
    }
    const end = start + LIMIT_MS
    while (echoed < clients * messages && now() < end) await sleep(10)
    if (echoed < clients * messages)
      throw new Error(`${kind}: ${echoed} of ${clients * messages} echoes came back in ${LIMIT_MS} ms`)
    const ms = now() - start
    const clientCpu = process.cpuUsage(clientCpu0)
    const cpuUs = (await server.call<number>('cpu')) - cpu0
    const clientCpuUs = clientCpu.user + clientCpu.system
    return { ...(await server.call<WireCounts>('wire')), echoed, ms, cpuUs, clientCpuUs }
  } finally {
    await Promise.all(open.map((c) => c.close()))
    server.detach()
    // Its exit, not a kill: a server given `--cpu-prof` writes its profile as it exits.
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      await exited
    }
  }
}

const sum = (counts: PacketCounts) => Object.values(counts).reduce((a, b) => a + b, 0)
const of = (counts: PacketCounts, type: number) => counts[String(type)] ?? 0
const per = (n: number, d: number) => (d > 0 ? (n / d).toFixed(3) : '-')

/** The rows printed for each kind of client, per echoed message unless they say otherwise. */
function rows(c: Run): [string, string][] {
  const m = c.echoed
  // Answers, not GETs: a GET held since before the counts began brings packets of the echo.
  const answered = sum(c.answerSizes)
  return [
    ['echoed messages', String(m)],
    // Not counts: the machine sets them, and they move from run to run.
    ['wall time, ms (timed)', c.ms.toFixed(0)],
    ['server CPU µs / msg (timed)', per(c.cpuUs, m)],
    ["clients' process CPU µs / msg (timed)", per(c.clientCpuUs, m)],
    ['HTTP requests / msg', per(c.gets + c.posts, m)],
    ['GET / msg', per(c.gets, m)],
    ['POST / msg', per(c.posts, m)],
    ['GETs answered empty / msg', per(c.emptyAnswers, m)],
    ['GETs with ack>0 / msg', per(c.getsWithAckAbove0, m)],
    ['packets per POST', per(sum(c.upPackets), c.posts)],
    ['packets per GET answer (non-empty)', per(sum(c.downPackets), answered)],
    ['EVENT up / msg', per(of(c.upPackets, 5), m)],
    ['EVENT down / msg', per(of(c.downPackets, 5), m)],
    ['ACK up / msg', per(of(c.upPackets, 4), m)],
    ['ACK down / msg', per(of(c.downPackets, 4), m)],
    ['PING down / msg', per(of(c.downPackets, 2), m)],
    ['PONG up / msg', per(of(c.upPackets, 3), m)],
    ['POST body bytes / msg', per(c.upBodyBytes, m)],
    ['GET answer body bytes / msg', per(c.downBodyBytes, m)],
    ['request header bytes / request', per(c.requestHeaderBytes, c.gets + c.posts)],
    ['request headers / request', per(c.requestHeaders, c.gets + c.posts)],
    ['bytes read by the server / msg', per(c.bytesRead, m)],
    ['bytes written by the server / msg', per(c.bytesWritten, m)],
    ['new connections', String(c.connections)],
    ['statuses', JSON.stringify(c.statuses)],
    ['POSTs by packets', JSON.stringify(c.postSizes)],
    ['GET answers by packets', JSON.stringify(c.answerSizes)],
  ]
}

const results: Record<string, Run> = {}
for (const kind of kinds) results[kind] = await count(kind)
if (values.json) console.log(JSON.stringify(results, null, 2))
else {
  console.log(`${clients} clients × ${messages} echoes, ${inFlight} in flight each, long-polling`)
  const table = kinds.map((kind) => rows(results[kind]!))
  const width = Math.max(...table[0]!.map(([name]) => name.length))
  console.log(`${''.padEnd(width)}  ${kinds.map((k) => k.padStart(20)).join('  ')}`)
  for (let i = 0; i < table[0]!.length; i++)
    console.log(`${table[0]![i]![0].padEnd(width)}  ${table.map((t) => t[i]![1].padStart(20)).join('  ')}`)
}
process.exit(0)
