// `pnpm -F @parley/bench client-cost`: what the Parley client costs the process it runs in, per
// message received. One Parley server (server.ts) in a process of its own broadcasts a short
// event to `--clients` WebSocket clients, all in one client process (client-cost-load.ts), as
// the broadcast scenario's load generator holds them; that process reads its own CPU time
// (process.cpuUsage) and GC time from just before the first measured broadcast to the last
// delivery. Each repetition starts a fresh client process; with several `--client` values the
// repetitions take turns, so that what else runs on the machine meets every client alike.
// Prints each repetition and the median, min and max of each client's figures.
//
//   pnpm -F @parley/bench client-cost [--clients 200] [--broadcasts 500] [--rate 25000] [--reps 5]
//     [--client @parley/client] [--client path/to/other/build/index.js] [--client thin]
import type { ChildProcess } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import type { OpenArgs, Window } from './client-cost-load.ts'
import { compileChildren } from './compiled-children.ts'
import { LOAD_FLAGS } from './config.ts'
import { forkReady } from './fork-ready.ts'
import { peer } from './rpc.ts'
import type { BroadcastResult } from './server.ts'
import { spread } from './stats.ts'

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '200' },
    broadcasts: { type: 'string', default: '500' },
    // Deliveries per second over all clients, as the broadcast scenario offers them.
    rate: { type: 'string', default: '25000' },
    reps: { type: 'string', default: '5' },
    client: { type: 'string', multiple: true, default: ['@parley/client'] },
  },
})
const clients = Number(values.clients)
const broadcasts = Number(values.broadcasts)
const rate = Number(values.rate)
const reps = Number(values.reps)
if (!(clients >= 1 && broadcasts >= 1 && rate > 0 && reps >= 1))
  throw new TypeError('--clients, --broadcasts, --reps >= 1, --rate > 0')
const ticksPerSecond = rate / clients
/** Node flags for the client process from PARLEY_BENCH_LOAD_FLAGS (`--cpu-prof`, say), for looking into a figure. */
const extraLoadFlags = process.env.PARLEY_BENCH_LOAD_FLAGS?.trim().split(/\s+/).filter(Boolean) ?? []

const benchDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
const scripts = await compileChildren(benchDir, ['server.ts', 'client-cost-load.ts'])
const children = new Set<ChildProcess>()
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL')
})

/** Starts a compiled child script and waits for its `ready` message. */
function start(
  file: string,
  args: string[],
  execArgv: string[],
): Promise<{ child: ChildProcess; ready: unknown }> {
  return forkReady(scripts.get(file)!, file, args, execArgv, benchDir, children)
}

const server = await start('server.ts', ['parley'], [])
const toServer = peer(server.child)
const url = `http://127.0.0.1:${server.ready as number}`

/** One repetition with one client: a fresh client process, a warm-up, then the measured window. */
async function repetition(client: string): Promise<Window> {
  const load = await start('client-cost-load.ts', [], [...LOAD_FLAGS, ...extraLoadFlags])
  const toLoad = peer(load.child)
  try {
    // A build's file, from where the command runs; a package name, from the bench.
    const module = client.endsWith('.js') ? path.resolve(client) : client
    await toLoad.call('open', { url, clients, client: module } satisfies OpenArgs)
    // The same broadcast, unmeasured, a fifth as long: the client's code is compiled and its
    // books and buffers are at their steady size before the window opens.
    const warm = await toServer.call<BroadcastResult>('broadcast', {
      ticksPerSecond,
      durationMs: ((broadcasts / 5) * 1000) / ticksPerSecond,
    })
    await toLoad.call('wait', { expected: warm.sent * warm.recipients })
    await toLoad.call('start')
    const b = await toServer.call<BroadcastResult>('broadcast', {
      ticksPerSecond,
      durationMs: (broadcasts * 1000) / ticksPerSecond,
    })
    return await toLoad.call<Window>('finish', { expected: b.sent * b.recipients })
  } finally {
    await toLoad.call('close').catch(() => {})
    toLoad.detach()
    load.child.kill('SIGTERM')
    await new Promise((resolve) => load.child.once('exit', resolve))
  }
}

const clientList = values.client
const results = new Map<string, Window[]>(clientList.map((c) => [c, []]))
console.log(
  `${clients} clients, ${broadcasts} broadcasts at ${rate} deliveries/s, ${reps} repetitions, clients in turn: ${clientList.join(', ')}`,
)
console.log('client | CPU µs/message | user CPU µs/message | GC µs/message | GCs | CPU % of a core')
for (let rep = 0; rep < reps; rep++) {
  // Each repetition starts with the next client: none always runs first.
  for (let k = 0; k < clientList.length; k++) {
    const client = clientList[(rep + k) % clientList.length]!
    const w = await repetition(client)
    results.get(client)!.push(w)
    console.log(
      `${client} | ${(w.cpuUs / w.delivered).toFixed(2)} | ${(w.userUs / w.delivered).toFixed(2)} | ${((w.gcMs * 1000) / w.delivered).toFixed(2)} | ${w.gcCount} | ${(w.cpuUs / 10 / w.ms).toFixed(0)}`,
    )
  }
}
const shown = (values: number[]) => {
  const s = spread(values)
  return `${s.median.toFixed(2)} (${s.min.toFixed(2)} to ${s.max.toFixed(2)})`
}
console.log('\nmedian (min to max) | CPU µs/message | user CPU µs/message | GC µs/message')
for (const [client, windows] of results) {
  console.log(
    `${client} | ${shown(windows.map((w) => w.cpuUs / w.delivered))} | ${shown(windows.map((w) => w.userUs / w.delivered))} | ${shown(windows.map((w) => (w.gcMs * 1000) / w.delivered))}`,
  )
}
toServer.detach()
server.child.kill('SIGTERM')
