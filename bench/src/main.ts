// `pnpm bench`: runs every scenario against every server, each server in a process of its own
// and the clients in another, and reports medians over repetitions with min–max, plus ratios
// to raw ws measured in the same repetition. Writes docs/benchmarks.md (default run) and, with
// `--json <file>`, the whole report as JSON.
//
//   pnpm bench [--quick] [--reps N] [--only echo,acks,...,metrics,idle,fanout,size,broadcast-heavy,rolling,adoption]
//              [--targets ws,parley-websocket,parley-thin-websocket,...]
//              [--json file] [--out file] [--no-docs]
//              [--fetch http|undici]  (the HTTP client under Parley's SSE and polling clients:
//                                      node:http, the default, or Node's fetch)
//              [--cpu-prof dir]   (V8 CPU profiles: Parley servers, and every node of the
//                                  multi-node scenarios, into dir/<scenario>.<target>,
//                                  load generators into dir/load/<scenario>.<target>)
// `--only cluster` runs both multi-node scenarios (three nodes, Redis, nginx; skipped where
// redis-server, nginx or a built @parley/redis is missing) and rewrites only their section;
// `--only metrics` (Parley without and with a prom-client registry) likewise. How cost grows
// with work: `idle` (1k, 5k, 20k idle connections), `fanout` (one broadcast to 100, 1k, 10k),
// `size` (64 B, 64 KB, 1 MB echoes), `broadcast-heavy` (100 000 deliveries/s offered);
// `--quick` leaves them out unless `--only` names them (bench/test/growth.test.ts does).
// To look into a figure (never for the published ones): `PARLEY_BENCH_SERVER_FLAGS` adds V8
// flags to every single-node server (`--trace-gc-nvp`, say); `PARLEY_BENCH_SURVIVORS=<dir>`
// has each server sample the allocations that outlive a young collection (survivors.ts);
// `PARLEY_BENCH_PARLEY_OPTIONS='{"sseUpstream":"close-when-idle"}'` adds options to every
// Parley server (server.ts); `PARLEY_BENCH_HEAP_SNAPSHOTS=<dir>` has each server write a heap
// snapshot after each memory reading, for heap-diff.ts.
import { type ChildProcess, fork } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { type RedisServer, redisServerPath, startRedis } from '../../test/support/redis-server.ts'
import { bundleSizes } from './bundle.ts'
import { type ClientKind, FETCH_KINDS, type FetchKind, serverKindOf } from './clients.ts'
import { compileChildren } from './compiled-children.ts'
import {
  isGrowth,
  LOAD_FLAGS,
  metricKeys,
  nodesOf,
  type ScenarioDef,
  type ScenarioName,
  scenarios,
} from './config.ts'
import { forkReady } from './fork-ready.ts'
import type { ClusterReading, Measurement } from './load.ts'
import { type Balancer, nginxPath, procCpuUs, startBalancer } from './nginx.ts'
import { redisPid } from './redis-pid.ts'
import {
  checkGoals,
  clusterVersions,
  isMetrics,
  machine,
  type Report,
  type Row,
  renderClusterMarkdown,
  renderMarkdown,
  renderMetricsMarkdown,
  renderText,
  versions,
  writeDocs,
} from './report.ts'
import { type Peer, peer } from './rpc.ts'
import { now, sleep } from './stats.ts'

const benchDir = fileURLToPath(new URL('..', import.meta.url))
const repoDir = path.resolve(benchDir, '..')

interface Cli {
  quick: boolean
  reps: number
  only: ScenarioName[] | undefined
  targets: string[] | undefined
  json: string | undefined
  out: string | undefined
  cpuProf: string | undefined
  fetch: FetchKind
}

function parseArgs(argv: string[]): Cli {
  const value = (flag: string) => {
    const i = argv.indexOf(flag)
    return i >= 0 ? argv[i + 1] : undefined
  }
  const quick = argv.includes('--quick')
  const reps = Number(value('--reps') ?? (quick ? 1 : 3))
  if (!(Number.isInteger(reps) && reps >= 1 && reps <= 10)) throw new TypeError('--reps must be 1 to 10')
  const fetch = value('--fetch') ?? 'http'
  if (!FETCH_KINDS.includes(fetch as FetchKind))
    throw new TypeError(`--fetch must be one of ${FETCH_KINDS.join(', ')}`)
  const resolve = (p: string | undefined) =>
    p === undefined ? undefined : path.resolve(process.env.INIT_CWD ?? process.cwd(), p)
  const out = argv.includes('--no-docs')
    ? undefined
    : (resolve(value('--out')) ?? (quick ? undefined : path.join(repoDir, 'docs', 'benchmarks.md')))
  return {
    quick,
    reps,
    only: value('--only')?.split(',') as ScenarioName[] | undefined,
    targets: value('--targets')?.split(','),
    json: resolve(value('--json')),
    out,
    cpuProf: resolve(value('--cpu-prof')),
    fetch: fetch as FetchKind,
  }
}

/** `--only` names a scenario, or the group before its dash (`cluster`: cluster, cluster-http). */
const selected = (cli: Cli, name: ScenarioName) =>
  !cli.only || cli.only.includes(name) || cli.only.includes(name.split('-')[0] as ScenarioName)

// Every process this run starts, so that all of them end with it, whatever happens. nginx gets
// SIGTERM, on which its master ends its workers (SIGKILL would leave them running).
const children = new Set<ChildProcess>()
/** Processes started by helpers that keep their ChildProcess (redis-server): by PID. */
const pids = new Set<number>()
const killAll = () => {
  for (const child of children) child.kill(child.spawnfile.endsWith('nginx') ? 'SIGTERM' : 'SIGKILL')
  for (const pid of pids)
    try {
      process.kill(pid, 'SIGKILL')
    } catch {}
}
const track = (child: ChildProcess) => {
  children.add(child)
  child.once('exit', () => children.delete(child))
}
process.on('exit', killAll)
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.on(signal, () => {
    killAll()
    process.exit(130)
  })

/** The scripts `start` runs, compiled once per run (see compiled-children.ts). */
const CHILD_SCRIPTS = ['server.ts', 'load.ts']
let childScripts: Promise<Map<string, string>> | undefined

/** Starts `file` (in src/) in a process of its own and waits for its `ready` message. */
async function start(
  file: string,
  args: string[],
  execArgv: string[],
): Promise<{ child: ChildProcess; ready: unknown }> {
  childScripts ??= compileChildren(benchDir, CHILD_SCRIPTS)
  const script = (await childScripts).get(file)
  if (!script) throw new Error(`${file} is not one of the child scripts (${CHILD_SCRIPTS.join(', ')})`)
  return forkReady(script, file, args, execArgv, benchDir, children)
}

/** Ends a child: SIGTERM, then SIGKILL after 3 s. */
function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill('SIGTERM')
  })
}

/** Why a multi-node scenario cannot run here for `kind`, or undefined when it can. */
function clusterMissing(kind: ClientKind): string | undefined {
  if (!redisServerPath) return 'no redis-server (install it or set PARLEY_REDIS_SERVER)'
  if (!nginxPath) return 'no nginx (install it or set PARLEY_NGINX)'
  if (
    serverKindOf(kind) === 'parley' &&
    !existsSync(path.join(benchDir, 'node_modules', '@parley', 'redis', 'dist', 'index.js'))
  )
    return 'no built @parley/redis in this checkout'
  return undefined
}

/** Why the adoption bench cannot run here, or undefined when it can. */
function adoptionMissing(): string | undefined {
  if (!redisServerPath) return 'no redis-server (install it or set PARLEY_REDIS_SERVER)'
  if (!existsSync(path.join(benchDir, 'node_modules', '@parley', 'redis', 'dist', 'index.js')))
    return 'no built @parley/redis in this checkout'
  return undefined
}

/**
 * Runs src/adoption.ts to its end (`quick`: 50 sessions, else 1000 and 3000); a failure is
 * reported, not thrown (the rest of the run stands).
 */
function runAdoption(out: string | undefined, quick: boolean): Promise<void> {
  return runScript('adoption', ['--sessions', quick ? '50' : '1000,3000', ...(out ? ['--out', out] : [])])
}

/** Runs src/rolling.ts to its end; a failure is reported, not thrown (the rest of the run stands). */
function runRolling(out: string | undefined): Promise<void> {
  return runScript('rolling', out ? ['--out', out] : [])
}

/** Runs src/<name>.ts in a process of its own to its end; a failure is reported, not thrown. */
function runScript(name: string, args: string[]): Promise<void> {
  const child = fork(path.join(benchDir, 'src', `${name}.ts`), args, {
    cwd: benchDir,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  track(child)
  return new Promise((resolve) => {
    child.once('exit', (code) => {
      if (code !== 0) console.log(`${name}: failed (exit ${code})`)
      resolve()
    })
  })
}

/**
 * V8 flags for every single-node server from `PARLEY_BENCH_SERVER_FLAGS` (space-separated), for
 * looking into a figure (`--trace-gc-nvp`, `--trace-pretenuring-statistics`); published figures
 * use none.
 */
function extraServerFlags(): string[] {
  return process.env.PARLEY_BENCH_SERVER_FLAGS?.trim().split(/\s+/).filter(Boolean) ?? []
}

/**
 * `--quick` (without `--cpu-prof`): one load generator for every single-node measurement of the
 * run, its start-up paid once. It keeps nothing from one scenario to the next (each opens its
 * own clients and closes them); what a quick run checks is that every scenario and client
 * works, and the default run still starts a fresh one for each measurement.
 */
let sharedLoad: Promise<{ child: ChildProcess; ready: unknown }> | undefined

/**
 * `--quick` (without `--cpu-prof`): one server process per command line (kind, arguments, V8
 * flags) for the run, as `sharedLoad` is for the load generator. A server is kept only after a
 * measurement that ended well, and taken again only once every client of the one before has
 * left it (see `idleServer`): what a scenario counts (`count`, `requests`, CPU, memory) it reads
 * as differences or against its own clients alone. The default run still starts a fresh one for
 * each measurement.
 */
const sharedServers = new Map<string, { child: ChildProcess; ready: unknown }>()

/**
 * How long a kept server may take to see the last measurement's clients go. The load generator
 * answers once every client's goodbye was answered (load.ts `closeAll`), so Parley's sessions
 * over SSE and polling have ended by then; WebSocket clients, whose goodbye it does not wait
 * for, are gone within a few ms (under 60 on a loaded machine), socket.io's clients a little
 * later. A server still holding a client after that is replaced: a long wait would
 * cost more than a fresh start.
 */
const IDLE_WAIT_MS = 200

/**
 * `server`, when it is still running and has no client left (within IDLE_WAIT_MS); stopped
 * and undefined otherwise (it ended, or kept a client).
 */
async function idleServer(server: {
  child: ChildProcess
  ready: unknown
}): Promise<{ child: ChildProcess; ready: unknown } | undefined> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return undefined
  const toServer = peer(server.child)
  try {
    const end = now() + IDLE_WAIT_MS
    for (;;) {
      if ((await toServer.call<number>('count', undefined, IDLE_WAIT_MS)) === 0) return server
      if (now() > end) break
      await sleep(20)
    }
  } catch {
    // No answer: not one to measure with.
  } finally {
    toServer.detach()
  }
  await stop(server.child)
  return undefined
}

/** One scenario against one server: a fresh server process and a fresh load generator (`--quick`: see sharedLoad, sharedServers). */
async function measure(scenario: ScenarioDef, kind: ClientKind, cli: Cli): Promise<Measurement> {
  if (nodesOf(scenario) > 1) return measureCluster(scenario, kind, cli)
  // One directory per measurement (V8 writes a profile per thread, named by pid and thread).
  const where = (...parts: string[]) => `--cpu-prof-dir=${path.join(...parts, `${scenario.name}.${kind}`)}`
  const profile = cli.cpuProf && serverKindOf(kind) === 'parley' ? ['--cpu-prof', where(cli.cpuProf)] : []
  // The load generator is profiled for every target: a saturated one caps what it measures.
  const loadProfile = cli.cpuProf ? ['--cpu-prof', where(cli.cpuProf, 'load')] : []
  const share = cli.quick && !cli.cpuProf
  const startLoad = () => start('load.ts', [], [...LOAD_FLAGS, ...loadProfile])
  let loadStart = sharedLoad
  if (share && loadStart) {
    // One that failed to start, or has ended since, is replaced.
    const previous = await loadStart.catch(() => undefined)
    if (!previous || previous.child.exitCode !== null || previous.child.signalCode !== null)
      loadStart = undefined
  }
  if (!share || !loadStart) loadStart = startLoad()
  if (share) sharedLoad = loadStart
  const serverArgs = [
    serverKindOf(kind),
    ...(kind === 'parley-metrics' ? ['--metrics'] : []),
    ...(scenario.serverArgs ?? []),
  ]
  const serverFlags = ['--expose-gc', ...scenario.serverFlags, ...extraServerFlags(), ...profile]
  const serverKey = JSON.stringify([serverArgs, serverFlags])
  let serverStart: Promise<{ child: ChildProcess; ready: unknown }> | undefined
  if (share) {
    const previous = sharedServers.get(serverKey)
    sharedServers.delete(serverKey)
    const idle = previous && (await idleServer(previous))
    if (idle) serverStart = Promise.resolve(idle)
  }
  serverStart ??= start('server.ts', serverArgs, serverFlags)
  const started = await Promise.allSettled([serverStart, loadStart])
  const [server, load] = started.map((s) => (s.status === 'fulfilled' ? s.value : undefined))
  // A shared load generator is kept only after a measurement that ended well: one that failed
  // may have left clients open, and the next measurement gets a fresh one.
  let done = false
  try {
    for (const s of started) if (s.status === 'rejected') throw s.reason
    const toServer = peer(server!.child)
    const toLoad = peer(load!.child, (cmd, args) => {
      if (cmd !== 'server') throw new Error(`unknown command ${cmd}`)
      const call = args as { cmd: string; args: unknown }
      return toServer.call(call.cmd, call.args, 90_000)
    })
    try {
      const url = `http://127.0.0.1:${server!.ready as number}`
      const args = { kind, url, fetch: cli.fetch, ...scenario.params, steps: scenario.steps }
      // A scenario of steps opens up to 20 000 connections one after the other: more time.
      const measured = await toLoad.call<Measurement>(scenario.name, args, scenario.steps ? 600_000 : 120_000)
      done = true
      return measured
    } finally {
      toLoad.detach()
      toServer.detach()
    }
  } finally {
    if (share && !done) sharedLoad = undefined
    const keep = share && done
    if (keep && server) sharedServers.set(serverKey, server)
    await Promise.all(
      [keep ? undefined : server, keep ? undefined : load].map((s) => (s ? stop(s.child) : undefined)),
    )
  }
}

/**
 * A multi-node scenario: a fresh Redis, `nodes` fresh server processes on it, nginx round-robin
 * over them and a fresh load generator whose clients go through nginx. The load generator
 * reaches the first node with `server(...)`, every node with `node: 'all'`, and reads nginx and
 * Redis through `cluster`.
 */
async function measureCluster(scenario: ScenarioDef, kind: ClientKind, cli: Cli): Promise<Measurement> {
  const where = (...parts: string[]) => `--cpu-prof-dir=${path.join(...parts, `${scenario.name}.${kind}`)}`
  // Every node is profiled, socket.io's too: the target compares the two, and a profiled
  // process spends more CPU than one that is not.
  const profile = cli.cpuProf ? ['--cpu-prof', where(cli.cpuProf)] : []
  const loadProfile = cli.cpuProf ? ['--cpu-prof', where(cli.cpuProf, 'load')] : []
  let redis: RedisServer | undefined
  let balancer: Balancer | undefined
  let started: PromiseSettledResult<{ child: ChildProcess; ready: unknown }>[] = []
  const peers: Peer[] = []
  try {
    redis = await startRedis()
    const redisProcess = redisPid(redis.port)
    if (redisProcess) pids.add(redisProcess)
    started = await Promise.allSettled([
      start('load.ts', [], [...LOAD_FLAGS, ...loadProfile]),
      ...Array.from({ length: nodesOf(scenario) }, () =>
        start(
          'server.ts',
          [serverKindOf(kind), redis!.url],
          ['--expose-gc', ...scenario.serverFlags, ...profile],
        ),
      ),
    ])
    for (const s of started) if (s.status === 'rejected') throw s.reason
    const [load, ...servers] = started.map(
      (s) => (s as PromiseFulfilledResult<{ child: ChildProcess; ready: unknown }>).value,
    )
    balancer = await startBalancer(
      servers.map((s) => s.ready as number),
      track,
    )
    // A Parley node forwards only to nodes whose heartbeat it has read (every 2 s by default):
    // give every node time to hear the others before clients come (docs/benchmarks.md).
    await sleep(scenario.params.settleMs ?? 0)
    const toServers = servers.map((s) => peer(s.child))
    peers.push(...toServers)
    const b = balancer
    const toLoad = peer(load!.child, (cmd, args) => {
      if (cmd === 'cluster') {
        const reading: ClusterReading = {
          statuses: b.statuses(),
          nginxCpuUs: procCpuUs(b.pid),
          redisCpuUs: redisProcess ? procCpuUs(redisProcess) : Number.NaN,
        }
        return reading
      }
      if (cmd !== 'server') throw new Error(`unknown command ${cmd}`)
      const call = args as { cmd: string; args: unknown; node?: 'all' }
      if (call.node === 'all') return Promise.all(toServers.map((s) => s.call(call.cmd, call.args, 90_000)))
      return toServers[0]!.call(call.cmd, call.args, 90_000)
    })
    peers.push(toLoad)
    const args = { kind, url: balancer.url, fetch: cli.fetch, ...scenario.params }
    return await toLoad.call<Measurement>(scenario.name, args, 120_000)
  } finally {
    for (const p of peers) p.detach()
    await Promise.all(started.map((s) => (s.status === 'fulfilled' ? stop(s.value.child) : undefined)))
    await balancer?.stop()
    await redis?.stop()
    pids.clear()
  }
}

async function main() {
  const cli = parseArgs(process.argv.slice(2))
  const t0 = now()
  // --quick (run by `pnpm test`) leaves out the multi-node scenarios, which start five
  // processes per row, metrics (a second echo pass: seconds that test has not to spare) and
  // the scenarios of how cost grows (a test of their own runs them), unless `--only` names them.
  const plan = scenarios(cli.quick, cli.reps).filter(
    (s) =>
      selected(cli, s.name) && !(cli.quick && !cli.only && (nodesOf(s) > 1 || isMetrics(s) || isGrowth(s))),
  )
  const report: Report = {
    quick: cli.quick,
    date: new Date().toISOString(),
    seconds: 0,
    machine: machine(),
    versions: versions(benchDir, repoDir),
    fetch: cli.fetch,
    scenarios: plan.map((s) => ({
      name: s.name,
      title: s.title,
      params: s.params,
      reps: s.reps,
      metrics: [...s.metrics],
      ...(s.steps ? { steps: [...s.steps], stepUnit: s.stepUnit ?? '' } : {}),
      rows: s.targets
        .filter((kind) => !cli.targets || cli.targets.includes(kind))
        .map(
          (kind): Row => ({
            kind,
            values: {},
            ratios: {},
            notes: [],
            errors: [],
            skipped: nodesOf(s) > 1 ? clusterMissing(kind) : undefined,
          }),
        ),
    })),
    bundle: undefined,
    goals: [],
  }
  const maxReps = Math.max(0, ...plan.map((s) => s.reps))
  for (let rep = 0; rep < maxReps; rep++) {
    for (const [i, scenario] of plan.entries()) {
      if (rep >= scenario.reps) continue
      const result = report.scenarios[i]!
      const reference: Record<string, number> = {}
      for (const row of result.rows) {
        const label = `[rep ${rep + 1}/${scenario.reps}] ${scenario.name} ${row.kind}`
        if (row.skipped) {
          if (rep === 0) console.log(`${label}: skipped: ${row.skipped}`)
          continue
        }
        let measured: Measurement | undefined
        const started = now()
        try {
          measured = await measure(scenario, row.kind, cli)
        } catch (err) {
          const message = err instanceof Error ? err.message : String(err)
          row.errors.push(`rep ${rep + 1}: ${message}`)
          console.log(`${label}: failed: ${message}`)
        }
        for (const metric of scenario.metrics)
          for (const key of metricKeys(scenario, metric.key)) {
            const v = measured?.values[key] ?? Number.NaN
            row.values[key] = [...(row.values[key] ?? []), v]
            if (row.kind === 'ws') reference[key] = v
            const ref = reference[key]
            if (metric.ratio && ref !== undefined) row.ratios[key] = [...(row.ratios[key] ?? []), v / ref]
          }
        for (const note of measured?.notes ?? []) if (!row.notes.includes(note)) row.notes.push(note)
        if (measured) {
          const shown = scenario.metrics.flatMap((m) =>
            metricKeys(scenario, m.key).map(
              (key) => `${key}=${measured.values[key]?.toFixed(m.digits) ?? '–'}`,
            ),
          )
          console.log(`${label}: ${shown.join(' ')} (${((now() - started) / 1000).toFixed(1)} s)`)
        }
      }
    }
  }
  // The rolling restart (three nodes, Redis, nginx, 1000 WebSocket clients, one round): a
  // script of its own, which `pnpm bench:rolling` also runs alone. In the default run, and with
  // `--only rolling`; it writes its own section of the docs.
  const rolling = 'rolling' as ScenarioName
  if (selected(cli, rolling) && (!cli.quick || cli.only?.includes(rolling))) {
    const missing = clusterMissing('parley-websocket')
    if (missing) console.log(`rolling: skipped: ${missing}`)
    else await runRolling(cli.out)
  }
  // A drain's adoption at scale (two nodes and Redis, no balancer): a script of its own, which
  // `pnpm bench:adoption` also runs alone. In the default run, and with `--only adoption`
  // (`--quick --only adoption`: 50 sessions); it writes its own section of the docs.
  const adoption = 'adoption' as ScenarioName
  if (selected(cli, adoption) && (!cli.quick || cli.only?.includes(adoption))) {
    const missing = adoptionMissing()
    if (missing) console.log(`adoption: skipped: ${missing}`)
    else await runAdoption(cli.out, cli.quick)
  }
  if (selected(cli, 'bundle' as ScenarioName)) report.bundle = await bundleSizes()
  if (plan.some((s) => nodesOf(s) > 1))
    report.clusterVersions = clusterVersions(benchDir, { 'redis-server': redisServerPath, nginx: nginxPath })
  report.goals = checkGoals(report)
  report.seconds = (now() - t0) / 1000
  console.log(`\n${renderText(report)}`)
  if (cli.json) writeFileSync(cli.json, `${JSON.stringify(report, null, 2)}\n`)
  if (cli.out) {
    // Each section of the file is rewritten only by a run that measured it.
    const single = plan.some((s) => nodesOf(s) === 1 && !isMetrics(s)) || report.bundle !== undefined
    const cluster = plan.some((s) => nodesOf(s) > 1)
    if (single) writeDocs(cli.out, renderMarkdown(report))
    if (cluster) writeDocs(cli.out, renderClusterMarkdown(report), 'cluster')
    if (plan.some(isMetrics)) writeDocs(cli.out, renderMetricsMarkdown(report), 'metrics')
    console.log(`wrote ${path.relative(process.cwd(), cli.out)}`)
  }
}

main()
  .catch((err: unknown) => {
    console.error(err)
    process.exitCode = 1
  })
  .finally(killAll)
