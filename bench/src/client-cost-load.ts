// The client process of `pnpm -F @parley/bench client-cost` (client-cost.ts): it opens the
// clients, counts the broadcasts they receive, and reads its own CPU and GC time around a window
// the runner marks. It loads the client to measure when told to (a module specifier or a file),
// so that two builds of the client can be compared in one run; `thin` is the benchmark's thin
// client (thin-parley.ts), the floor that a client which only parses and counts reaches.
import { PerformanceObserver } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'
import WebSocket from 'ws'
import { peer } from './rpc.ts'
import { now, sleep } from './stats.ts'
import { thinParleyClient } from './thin-parley.ts'

/** What the runner asks for with `open`. */
export interface OpenArgs {
  url: string
  clients: number
  /** `@parley/client`, a path to a build's `index.js`, or `thin`. */
  client: string
}

/** One window's readings, from `start` to the last expected delivery. */
export interface Window {
  cpuUs: number
  /** The part of `cpuUs` spent in the process's own code (JavaScript, V8, Node), not the kernel's. */
  userUs: number
  gcMs: number
  gcCount: number
  delivered: number
  ms: number
}

/** The few members of a client used here, whichever client it is. */
interface Counted {
  ready: Promise<void>
  close(): void
}

interface ClientModule {
  connect(
    url: string,
    options: Record<string, unknown>,
  ): {
    on(event: string, fn: (...args: unknown[]) => void): unknown
    once(event: string, fn: (...args: unknown[]) => void): unknown
    disconnect(): unknown
  }
}

const HOUR = 3_600_000
let delivered = 0
const count = () => {
  delivered++
}

/** The clients of clients.ts's `parley-websocket`, from the module `specifier`. */
async function parleyClients(specifier: string, url: string, n: number): Promise<Counted[]> {
  const target =
    specifier.startsWith('.') || specifier.startsWith('/') ? pathToFileURL(specifier).href : specifier
  const { connect } = (await import(target)) as ClientModule
  return Array.from({ length: n }, () => {
    const socket = connect(`${url}/parley`, {
      transports: ['websocket'],
      // On a busy machine a WebSocket may take more than the default's third of 3 s to upgrade.
      connectTimeout: 20_000,
      upgradeDelay: HOUR,
      upgradeDelayMax: HOUR,
      reconnection: false,
      WebSocket,
    })
    socket.on('tick', count)
    const ready = new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve())
      socket.once('connect_error', (err) => reject(err))
    })
    return { ready, close: () => void socket.disconnect() }
  })
}

function thinClients(url: string, n: number): Counted[] {
  return Array.from({ length: n }, () => {
    const client = thinParleyClient('websocket', { url, timeoutMs: 20_000, fetch: 'http' })
    client.on('tick', count)
    return client
  })
}

const clients: Counted[] = []
let gcMs = 0
let gcCount = 0
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    gcMs += entry.duration
    gcCount++
  }
}).observe({ entryTypes: ['gc'] })

let mark = { cpu: process.cpuUsage(), gcMs: 0, gcCount: 0, delivered: 0, t: 0 }

/** Waits until `delivered` reaches `expected`; throws after `limitMs`. */
async function deliveredBy(expected: number, limitMs: number): Promise<void> {
  const end = now() + limitMs
  while (delivered < expected) {
    if (now() > end)
      throw new Error(`${delivered - mark.delivered} deliveries of ${expected - mark.delivered}`)
    await sleep(5)
  }
}

peer(process, async (cmd, args) => {
  switch (cmd) {
    case 'open': {
      const { url, clients: n, client } = args as OpenArgs
      // At most 50 connecting at once, as the benchmark's load generator opens them.
      for (let opened = 0; opened < n; opened += 50) {
        const size = Math.min(50, n - opened)
        const batch = client === 'thin' ? thinClients(url, size) : await parleyClients(client, url, size)
        clients.push(...batch)
        await Promise.all(batch.map((c) => c.ready))
      }
      return
    }
    case 'start':
      mark = { cpu: process.cpuUsage(), gcMs, gcCount, delivered, t: now() }
      return
    case 'finish': {
      // Deliveries expected since `start`; the window ends with the last of them.
      await deliveredBy(mark.delivered + (args as { expected: number }).expected, 30_000)
      const { user, system } = process.cpuUsage(mark.cpu)
      return {
        cpuUs: user + system,
        userUs: user,
        // GC entries are reported after the collection: let the last of them in.
        gcMs: await sleep(20).then(() => gcMs - mark.gcMs),
        gcCount: gcCount - mark.gcCount,
        delivered: delivered - mark.delivered,
        ms: now() - mark.t,
      } satisfies Window
    }
    case 'wait':
      await deliveredBy((args as { expected: number }).expected, 30_000)
      return
    case 'close':
      for (const c of clients) c.close()
      return
  }
  throw new Error(`unknown command ${cmd}`)
})
process.on('disconnect', () => process.exit(0))
process.on('SIGTERM', () => process.exit(0))
process.send?.({ ready: true })
