// `pnpm bench:adoption`: a drain's adoption at scale. Two Parley nodes (adoption-node.ts, a
// process each) on a fresh redis-server; N sessions opened on the first by a polling handshake
// whose GET never comes (clients gone right after it: away sessions); then the first node
// drains and closes, and the other, the one live node, adopts what nobody claimed. For each N:
// how many the adopter took before the drain's end (its deadline: the rest are sealed), how long
// the adoption took (first restore to last), the adopter's CPU and the Redis commands it sent,
// each per adopted session. Prints a Markdown table; with `--out`, writes it into that file's
// adoption section (docs/benchmarks.md, by `pnpm bench`); with `--json`, the rows.
//
//   pnpm bench:adoption [--sessions 1000,3000] [--out file] [--json file]
import type { ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { type RedisServer, startRedis } from '../../test/support/redis-server.ts'
import { forkReady } from './fork-ready.ts'
import { redisPid } from './redis-pid.ts'
import { machine, writeDocs } from './report.ts'
import { type Peer, peer } from './rpc.ts'
import { sleep } from './stats.ts'

/** The most sessions one run opens: bounded, as every bench is. */
const MOST_SESSIONS = 5000
/** Handshakes at once while the sessions open. */
const OPENING_AT_ONCE = 50

export interface AdoptionRow {
  sessions: number
  /** Restored by the adopter by the end of the drain (its deadline). */
  adoptedByDeadline: number
  /** Restored in all, a few seconds after it (late claims of sealed tails included). */
  adopted: number
  /** First restore to last, in ms (by the end of the drain). */
  spanMs: number
  /** The adopter's CPU (user + system), in ms, per session adopted, over the whole drain. */
  cpuMsPerSession: number
  /** Commands the adopter sent on its Redis client, per session adopted, over the whole drain. */
  commandsPerSession: number
  /** The same by command name. */
  byCommand: Record<string, number>
}

interface Reading {
  restored: number
  commands: number
  byName: Record<string, number>
  cpuMs: number
  firstRestoredAt?: number
  lastRestoredAt?: number
}

const benchDir = fileURLToPath(new URL('..', import.meta.url))
const children = new Set<ChildProcess>()
/** The redis-servers of runs under way, by PID: killed should this process end first. */
const redisPids = new Set<number>()
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL')
  for (const pid of redisPids)
    try {
      process.kill(pid, 'SIGKILL')
    } catch {}
})
// Stopped (the runner's own end, a timeout): the nodes and Redis go with it.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130))

/** Starts one node on `redisUrl`; its RPC peer and its Parley URL. */
async function startNode(redisUrl: string): Promise<{ child: ChildProcess; rpc: Peer; url: string }> {
  const { child, ready } = await forkReady(
    path.join(benchDir, 'src', 'adoption-node.ts'),
    'adoption node',
    ['--redis', redisUrl],
    ['--import', 'tsx'],
    benchDir,
    children,
  )
  return { child, rpc: peer(child), url: (ready as { url: string }).url }
}

/** Opens a polling session on `url` whose GET never comes: its client went right after OPEN. */
async function openAway(url: string): Promise<void> {
  const res = await fetch(`${url}/poll?v=1`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain' },
    body: JSON.stringify([8, {}]),
  })
  const text = await res.text()
  if (res.status !== 200) throw new Error(`handshake refused: ${res.status} ${text}`)
}

/** Waits for `check`, at most `ms`; false if it never held. */
async function waitFor(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > end) return false
    await sleep(100)
  }
  return true
}

/** One drain of `sessions` away sessions adopted by one live node, on a fresh Redis. */
export async function adoptionRun(sessions: number): Promise<AdoptionRow> {
  const redis: RedisServer = await startRedis()
  const pid = redisPid(redis.port)
  if (pid !== undefined) redisPids.add(pid)
  const nodes: { child: ChildProcess; rpc: Peer }[] = []
  try {
    const old = await startNode(redis.url)
    nodes.push(old)
    const adopter = await startNode(redis.url)
    nodes.push(adopter)
    const seen = async () =>
      (await old.rpc.call<number>('live')) >= 1 && (await adopter.rpc.call<number>('live')) >= 1
    if (!(await waitFor(seen, 20_000))) throw new Error('the two nodes never saw each other')
    for (let opened = 0; opened < sessions; opened += OPENING_AT_ONCE)
      await Promise.all(
        Array.from({ length: Math.min(OPENING_AT_ONCE, sessions - opened) }, () => openAway(old.url)),
      )
    await adopter.rpc.call('mark')
    await old.rpc.call('close', undefined, 60_000)
    const byDeadline = await adopter.rpc.call<Reading>('reading')
    // What was still being claimed at the deadline lands late; bounded.
    await waitFor(async () => (await adopter.rpc.call<Reading>('reading')).restored >= sessions, 5000)
    const final = await adopter.rpc.call<Reading>('reading')
    const per = (n: number) => (final.restored > 0 ? n / final.restored : Number.NaN)
    return {
      sessions,
      adoptedByDeadline: byDeadline.restored,
      adopted: final.restored,
      spanMs: (byDeadline.lastRestoredAt ?? 0) - (byDeadline.firstRestoredAt ?? 0),
      cpuMsPerSession: per(final.cpuMs),
      commandsPerSession: per(final.commands),
      byCommand: Object.fromEntries(Object.entries(final.byName).map(([name, n]) => [name, per(n)])),
    }
  } finally {
    for (const { child } of nodes) child.kill('SIGKILL')
    await redis.stop()
    if (pid !== undefined) redisPids.delete(pid)
  }
}

/** The rows as a Markdown table. */
export function adoptionTable(rows: readonly AdoptionRow[]): string {
  const lines = [
    '| away sessions | adopted by the drain’s end | adopted in all | first to last restore (ms) | adopter CPU ms / session | adopter Redis commands / session |',
    '| ---: | ---: | ---: | ---: | ---: | ---: |',
  ]
  // None adopted: no cost per session to tell.
  const figure = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '—')
  for (const r of rows)
    lines.push(
      `| ${r.sessions} | ${r.adoptedByDeadline} | ${r.adopted} | ${r.spanMs} | ${figure(r.cpuMsPerSession)} | ${figure(r.commandsPerSession)} |`,
    )
  return lines.join('\n')
}

/** `byCommand` as `EVAL 1.03, PUBLISH 1.00`, the most first. */
function byName(byCommand: Record<string, number>): string {
  return Object.entries(byCommand)
    .filter(([, n]) => Number.isFinite(n))
    .sort(([, a], [, b]) => b - a)
    .map(([name, n]) => `${name} ${n.toFixed(2)}`)
    .join(', ')
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      sessions: { type: 'string', default: '1000,3000' },
      out: { type: 'string' },
      json: { type: 'string' },
    },
  })
  const counts = values.sessions.split(',').map(Number)
  if (!counts.every((n) => Number.isInteger(n) && n >= 1 && n <= MOST_SESSIONS))
    throw new TypeError(`--sessions: counts of 1 to ${MOST_SESSIONS}, comma-separated`)
  const m = machine()
  const rows: AdoptionRow[] = []
  for (const n of counts) {
    const row = await adoptionRun(n)
    console.log(JSON.stringify(row))
    rows.push(row)
  }
  const table = adoptionTable(rows)
  console.log(table)
  if (values.json) writeFileSync(values.json, JSON.stringify(rows))
  if (values.out)
    writeDocs(
      values.out,
      [
        `Run of ${new Date().toISOString().slice(0, 10)}: ${m.cpu}, ${m.cores} cores, Node ${process.version}, load average ${m.load} at the start; one node drains (default handoff options), one live node adopts.`,
        '',
        table,
        '',
        ...rows.map(
          (r) =>
            `- ${r.sessions}: the adopter's commands per adopted session, by name: ${byName(r.byCommand) || 'none'}.`,
        ),
      ].join('\n'),
      'adoption',
    )
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main()
