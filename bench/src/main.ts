// `pnpm bench`: runs every scenario against every server, each server in a process of its own
// and the clients in another, and reports medians over repetitions with min–max, plus ratios
// to raw ws measured in the same repetition. Writes docs/benchmarks.md (default run) and, with
// `--json <file>`, the whole report as JSON.
//
//   pnpm bench [--quick] [--reps N] [--only echo,acks,...] [--targets ws,parley-websocket,...]
//              [--json file] [--out file] [--no-docs]
//              [--fetch http|undici]  (the HTTP client under Parley's SSE and polling clients:
//                                      node:http, the default, or Node's fetch)
//              [--cpu-prof dir]   (V8 CPU profiles: Parley servers into dir/<scenario>.<target>,
//                                  load generators into dir/load/<scenario>.<target>)
import { type ChildProcess, fork } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { bundleSizes } from './bundle.ts'
import { type ClientKind, FETCH_KINDS, type FetchKind, serverKindOf } from './clients.ts'
import { type ScenarioDef, type ScenarioName, scenarios } from './config.ts'
import type { Measurement } from './load.ts'
import {
  checkGoals,
  machine,
  type Report,
  type Row,
  renderMarkdown,
  renderText,
  versions,
  writeDocs,
} from './report.ts'
import { peer } from './rpc.ts'
import { now } from './stats.ts'

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

// Every process this run starts, so that all of them end with it, whatever happens.
const children = new Set<ChildProcess>()
const killAll = () => {
  for (const child of children) child.kill('SIGKILL')
}
process.on('exit', killAll)
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.on(signal, () => {
    killAll()
    process.exit(130)
  })

/** Starts `file` (in src/) in a process of its own and waits for its `ready` message. */
function start(
  file: string,
  args: string[],
  execArgv: string[],
): Promise<{ child: ChildProcess; ready: unknown }> {
  const child = fork(path.join(benchDir, 'src', file), args, {
    cwd: benchDir,
    execArgv: ['--import', 'tsx', ...execArgv],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  children.add(child)
  child.once('exit', () => children.delete(child))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`${file} did not start in 30 s`)), 30_000)
    const fail = (err: Error) => {
      clearTimeout(timer)
      child.kill('SIGKILL')
      reject(err)
    }
    child.once('exit', (code) => fail(new Error(`${file} exited with ${code} before it was ready`)))
    child.on('message', function onReady(message: unknown) {
      if (typeof message === 'object' && message !== null && 'ready' in message) {
        clearTimeout(timer)
        child.off('message', onReady)
        child.removeAllListeners('exit')
        child.once('exit', () => children.delete(child))
        resolve({ child, ready: (message as { ready: unknown }).ready })
      }
    })
  })
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

/** One scenario against one server: a fresh server process and a fresh load generator. */
async function measure(scenario: ScenarioDef, kind: ClientKind, cli: Cli): Promise<Measurement> {
  // One directory per measurement (V8 writes a profile per thread, named by pid and thread).
  const where = (...parts: string[]) => `--cpu-prof-dir=${path.join(...parts, `${scenario.name}.${kind}`)}`
  const profile = cli.cpuProf && serverKindOf(kind) === 'parley' ? ['--cpu-prof', where(cli.cpuProf)] : []
  // The load generator is profiled for every target: a saturated one caps what it measures.
  const loadProfile = cli.cpuProf ? ['--cpu-prof', where(cli.cpuProf, 'load')] : []
  const started = await Promise.allSettled([
    start('server.ts', [serverKindOf(kind)], ['--expose-gc', ...scenario.serverFlags, ...profile]),
    start('load.ts', [], loadProfile),
  ])
  const [server, load] = started.map((s) => (s.status === 'fulfilled' ? s.value : undefined))
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
      const args = { kind, url, fetch: cli.fetch, ...scenario.params }
      return await toLoad.call<Measurement>(scenario.name, args, 120_000)
    } finally {
      toLoad.detach()
      toServer.detach()
    }
  } finally {
    await Promise.all([server, load].map((s) => (s ? stop(s.child) : undefined)))
  }
}

async function main() {
  const cli = parseArgs(process.argv.slice(2))
  const t0 = now()
  const plan = scenarios(cli.quick, cli.reps).filter((s) => !cli.only || cli.only.includes(s.name))
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
      rows: s.targets
        .filter((kind) => !cli.targets || cli.targets.includes(kind))
        .map((kind): Row => ({ kind, values: {}, ratios: {}, notes: [], errors: [] })),
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
        let measured: Measurement | undefined
        const started = now()
        try {
          measured = await measure(scenario, row.kind, cli)
        } catch (err) {
          const message = err instanceof Error ? err.message : String(err)
          row.errors.push(`rep ${rep + 1}: ${message}`)
          console.log(`${label}: failed: ${message}`)
        }
        for (const metric of scenario.metrics) {
          const v = measured?.values[metric.key] ?? Number.NaN
          row.values[metric.key] = [...(row.values[metric.key] ?? []), v]
          if (row.kind === 'ws') reference[metric.key] = v
          const ref = reference[metric.key]
          if (metric.ratio && ref !== undefined)
            row.ratios[metric.key] = [...(row.ratios[metric.key] ?? []), v / ref]
        }
        for (const note of measured?.notes ?? []) if (!row.notes.includes(note)) row.notes.push(note)
        if (measured) {
          const shown = scenario.metrics.map((m) => `${m.key}=${measured.values[m.key]?.toFixed(m.digits)}`)
          console.log(`${label}: ${shown.join(' ')} (${((now() - started) / 1000).toFixed(1)} s)`)
        }
      }
    }
  }
  if (!cli.only || cli.only.includes('bundle' as ScenarioName)) report.bundle = await bundleSizes()
  report.goals = checkGoals(report)
  report.seconds = (now() - t0) / 1000
  console.log(`\n${renderText(report)}`)
  if (cli.json) writeFileSync(cli.json, `${JSON.stringify(report, null, 2)}\n`)
  if (cli.out) {
    writeDocs(cli.out, renderMarkdown(report))
    console.log(`wrote ${path.relative(process.cwd(), cli.out)}`)
  }
}

main()
  .catch((err: unknown) => {
    console.error(err)
    process.exitCode = 1
  })
  .finally(killAll)
