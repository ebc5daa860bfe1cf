// The report of a run: its data (also written as JSON), the issue's targets checked against it,
// and its Markdown and text renderings.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { BundleSizes } from './bundle.ts'
import type { ClientKind, FetchKind } from './clients.ts'
import { LOAD_FLAGS, type MetricDef, type ScenarioName } from './config.ts'
import { type Spread, spread } from './stats.ts'

/** One client kind in one scenario: per metric, one value per repetition (NaN: failed). */
export interface Row {
  kind: ClientKind
  values: Record<string, number[]>
  /** Per metric, value / raw ws value of the same repetition. */
  ratios: Record<string, number[]>
  notes: string[]
  errors: string[]
  /** Why this row was not measured here (a multi-node scenario without Redis, nginx, ...). */
  skipped?: string | undefined
}

export interface ScenarioResult {
  name: ScenarioName
  title: string
  params: Record<string, number>
  reps: number
  metrics: MetricDef[]
  rows: Row[]
  /** A scenario of steps (config.ts): one table line per row and step, metrics `key@step`. */
  steps?: number[]
  stepUnit?: string
}

export interface Goal {
  goal: string
  /** The limit, as written in the issue. */
  limit: string
  parley: number
  /** What Parley is held against, or shown beside (socket.io's comparable row, mostly). */
  reference: number
  referenceLabel: string
  met: boolean
}

export interface Report {
  quick: boolean
  date: string
  seconds: number
  machine: Record<string, string | number>
  versions: Record<string, string>
  /** The HTTP client under the Parley client's SSE and polling in the load generator. */
  fetch: FetchKind
  scenarios: ScenarioResult[]
  bundle: BundleSizes | undefined
  goals: Goal[]
  /** Redis, nginx and the adapters, when a multi-node scenario ran. */
  clusterVersions?: Record<string, string>
}

export function machine(): Record<string, string | number> {
  const cpus = os.cpus()
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    /** Load average over 1, 5 and 15 minutes when the run started: how busy the machine was. */
    load: os
      .loadavg()
      .map((v) => v.toFixed(1))
      .join(' / '),
  }
}

function version(file: string): string {
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version
  } catch {
    return 'unknown'
  }
}

export function versions(benchDir: string, repoDir: string): Record<string, string> {
  const dep = (name: string, from = benchDir) =>
    version(path.join(from, 'node_modules', name, 'package.json'))
  let commit = 'unknown'
  try {
    const git = (...args: string[]) => execFileSync('git', args, { cwd: repoDir, encoding: 'utf8' }).trim()
    const dirty = git('status', '--porcelain', '--', 'packages').length > 0
    commit = `${git('rev-parse', '--short', 'HEAD')}${dirty ? ' (with uncommitted changes in packages/)' : ''}`
  } catch {}
  return {
    parley: `${version(path.join(repoDir, 'packages', 'server', 'package.json'))}, commit ${commit}`,
    fastify: dep('fastify'),
    '@fastify/websocket': dep('@fastify/websocket', path.join(repoDir, 'packages', 'server')),
    'socket.io': dep('socket.io'),
    'socket.io-client': dep('socket.io-client'),
    ws: dep('ws'),
    esbuild: dep('esbuild'),
  }
}

/** What the multi-node scenarios run besides the servers. */
export function clusterVersions(benchDir: string, tools: Record<string, string | undefined>) {
  const dep = (name: string) => version(path.join(benchDir, 'node_modules', name, 'package.json'))
  const out: Record<string, string> = {
    '@parley/redis': dep('@parley/redis'),
    '@socket.io/redis-adapter': dep('@socket.io/redis-adapter'),
    redis: dep('redis'),
  }
  for (const [name, file] of Object.entries(tools)) {
    if (!file) continue
    // nginx prints its version on stderr, redis-server on stdout.
    const run = spawnSync(file, [name === 'nginx' ? '-v' : '--version'], { encoding: 'utf8' })
    const text = `${run.stdout ?? ''}${run.stderr ?? ''}`
    out[name] = /(?:v=|nginx\/)([\d.]+)/.exec(text)?.[1] ?? 'unknown'
  }
  return out
}

const row = (r: Report, scenario: ScenarioName, kind: ClientKind) =>
  r.scenarios.find((s) => s.name === scenario)?.rows.find((x) => x.kind === kind)

const median = (values: number[] | undefined) => spread(values ?? []).median

/**
 * The targets of issue 14, each with Parley's median and what it is held against (socket.io's
 * comparable row, raw ws, Parley's own WebSocket row, or a fixed number). A target whose rows
 * were not measured in this run is left out.
 */
export function checkGoals(r: Report): Goal[] {
  const goals: Goal[] = []
  const measured = (scenario: ScenarioName, kind: ClientKind) => {
    const x = row(r, scenario, kind)
    return x && !x.skipped ? x : undefined
  }
  /** Parley's `metric` against `factor` × the reference row's (`ratio`: its `× ws` ratio against `factor`). */
  const versus = (
    goal: string,
    scenario: ScenarioName,
    metric: string,
    parley: ClientKind,
    reference: ClientKind,
    factor = 1,
  ) => {
    const p = measured(scenario, parley)
    const ref = measured(scenario, reference)
    if (!p || !ref) return
    const pv = median(p.values[metric])
    const rv = median(ref.values[metric])
    goals.push({
      goal,
      limit: `≤ ${factor === 1 ? '' : `${factor} × `}${LABELS[reference]}`,
      parley: pv,
      reference: rv,
      referenceLabel: LABELS[reference],
      met: pv <= rv * factor,
    })
  }
  /** Parley's server CPU per echoed message as a ratio to raw ws of the same repetition. */
  const echoRatio = (goal: string, scenario: ScenarioName) => {
    const p = measured(scenario, 'parley-websocket')
    if (!p || !measured(scenario, 'ws')) return
    goals.push({
      goal,
      limit: '≤ 1.1 × raw ws',
      parley: median(p.ratios.cpuUsPerMsg),
      reference: median(measured(scenario, 'socketio-websocket')?.ratios.cpuUsPerMsg),
      referenceLabel: LABELS['socketio-websocket'],
      met: median(p.ratios.cpuUsPerMsg) <= 1.1,
    })
  }
  echoRatio('Echo: server CPU µs/msg, WebSocket (× raw ws, same repetition)', 'echo')
  echoRatio('Echo at a steady rate: server CPU µs/msg, WebSocket (× raw ws, same repetition)', 'echo-steady')
  versus('Echo: server CPU µs/msg, polling', 'echo', 'cpuUsPerMsg', 'parley-polling', 'socketio-polling')
  versus(
    'Echo: server CPU µs/msg, polling, thin clients',
    'echo',
    'cpuUsPerMsg',
    'parley-thin-polling',
    'socketio-thin-polling',
  )
  versus(
    'Broadcast: server CPU µs/delivery, WebSocket',
    'broadcast',
    'cpuUsPerDelivery',
    'parley-websocket',
    'socketio-websocket',
  )
  versus(
    'Broadcast: p99 ms, WebSocket',
    'broadcast',
    'latencyP99Ms',
    'parley-websocket',
    'socketio-websocket',
  )
  versus(
    'Broadcast: p99 ms, WebSocket, thin client',
    'broadcast',
    'latencyP99Ms',
    'parley-thin-websocket',
    'socketio-websocket',
  )
  versus(
    'Broadcast: server CPU µs/delivery, SSE',
    'broadcast',
    'cpuUsPerDelivery',
    'parley-sse',
    'parley-websocket',
    1.2,
  )
  versus(
    'Broadcast: server CPU µs/delivery, polling',
    'broadcast',
    'cpuUsPerDelivery',
    'parley-polling',
    'socketio-polling',
  )
  versus('Broadcast: p99 ms, polling', 'broadcast', 'latencyP99Ms', 'parley-polling', 'socketio-polling')
  const polling = measured('broadcast', 'parley-polling')
  if (polling) {
    const v = median(polling.values.eventLoopDelayP99Ms)
    goals.push({
      goal: 'Broadcast: server event-loop delay p99 ms, polling',
      limit: '≤ 30 ms',
      parley: v,
      reference: median(measured('broadcast', 'socketio-polling')?.values.eventLoopDelayP99Ms),
      referenceLabel: LABELS['socketio-polling'],
      met: v <= 30,
    })
  }
  // Idle memory: the largest number of connections this run measured for Parley's row.
  const idle = r.scenarios.find((s) => s.name === 'idle')
  const idleGoal = (
    what: string,
    metric: string,
    parley: ClientKind,
    reference: ClientKind,
    limit: number,
  ) => {
    const x = measured('idle', parley)
    const step = [...(idle?.steps ?? [])]
      .reverse()
      .find((n) => Number.isFinite(median(x?.values[`${metric}@${n}`])))
    if (!x || step === undefined) return
    const v = median(x.values[`${metric}@${step}`])
    // Where the open-files limit allowed fewer than the step's count, the label says how many.
    const held = median(x.values[`held@${step}`])
    const fewer = held < step ? ` (${Math.round(held)} held)` : ''
    goals.push({
      goal: `Idle: ${what} KB/conn at ${stepLabel(step, 'connections')}${fewer}`,
      limit: `≤ ${limit} KB`,
      parley: v,
      reference: median(measured('idle', reference)?.values[`${metric}@${step}`]),
      referenceLabel: LABELS[reference],
      met: v <= limit,
    })
  }
  idleGoal('RSS, WebSocket', 'rssKBPerConn', 'parley-thin-websocket', 'socketio-thin-websocket', 12)
  idleGoal('heap, WebSocket', 'heapKBPerConn', 'parley-thin-websocket', 'socketio-thin-websocket', 4)
  idleGoal('RSS, SSE', 'rssKBPerConn', 'parley-thin-sse', 'socketio-thin-polling', 14)
  idleGoal('RSS, polling', 'rssKBPerConn', 'parley-thin-polling', 'socketio-thin-polling', 14)
  // Several nodes: Parley against socket.io itself, both with their Redis adapters.
  const clusterGoal = (goal: string, metric: string) => {
    const p = measured('cluster', 'parley-websocket')
    const s = measured('cluster', 'socketio-websocket')
    if (!p || !s) return
    const pv = median(p.values[metric])
    const sv = median(s.values[metric])
    goals.push({
      goal,
      limit: '≤ socket.io',
      parley: pv,
      reference: sv,
      referenceLabel: LABELS['socketio-websocket'],
      met: pv <= sv,
    })
  }
  clusterGoal('Three nodes on Redis: broadcast p99, WebSocket (ms)', 'latencyP99Ms')
  clusterGoal('Three nodes on Redis: server CPU per delivery, WebSocket (µs)', 'cpuUsPerDelivery')
  if (r.bundle) {
    const socketio = r.bundle.socketio.gzipBytes / 1024
    for (const [goal, size] of [
      ['Browser client min+gzip KB, dist/parley.min.js as shipped', r.bundle.parley],
      [
        "Browser client min+gzip KB, esbuild of `import { connect } from '@parley/client'`",
        r.bundle.parleyEsm,
      ],
    ] as const) {
      if (!size) continue
      goals.push({
        goal,
        limit: '≤ 8 KB',
        parley: size.gzipBytes / 1024,
        reference: socketio,
        referenceLabel: 'socket.io-client, bundled by esbuild',
        met: size.gzipBytes / 1024 <= 8,
      })
    }
  }
  return goals
}

const fmt = (v: number, digits: number) => (Number.isFinite(v) ? v.toFixed(digits) : '–')
const fmtSpread = (s: Spread, digits: number, single: boolean) =>
  single || s.min === s.max || !Number.isFinite(s.min)
    ? fmt(s.median, digits)
    : `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})`

const LABELS: Record<ClientKind, string> = {
  ws: 'raw ws (ceiling)',
  'parley-websocket': 'Parley, WebSocket',
  'parley-sse': 'Parley, SSE',
  'parley-polling': 'Parley, polling',
  'socketio-websocket': 'socket.io, WebSocket',
  'socketio-polling': 'socket.io, polling',
  'parley-thin-websocket': 'Parley, WebSocket, thin client',
  'parley-thin-sse': 'Parley, SSE, thin client',
  'parley-thin-polling': 'Parley, polling, thin client',
  'socketio-thin-websocket': 'socket.io, WebSocket, thin client',
  'socketio-thin-polling': 'socket.io, polling, thin client',
  parley: 'Parley, default client',
  'parley-metrics': 'Parley, WebSocket, with a prom-client registry',
  socketio: 'socket.io, default client (polling first)',
}

const FETCH_LABELS: Record<FetchKind, string> = {
  http: 'the Parley client fetches through `node:http` (one keep-alive Agent per client), as socket.io-client does in Node',
  undici:
    "the Parley client fetches through Node's fetch (undici, one pool per client); socket.io-client uses `node:http`",
}

/** A step as people say it: `20k connections`, `64 KB`. */
export function stepLabel(step: number, unit: string): string {
  if (unit === 'bytes')
    return step >= 2 ** 20 ? `${step / 2 ** 20} MB` : step >= 1024 ? `${step / 1024} KB` : `${step} B`
  const n = step >= 1000 && step % 1000 === 0 ? `${step / 1000}k` : String(step)
  return `${n} ${unit}`
}

/**
 * A Markdown table of one scenario: median (min–max) and the ratio to raw ws; a scenario of
 * steps has one line per row and step.
 */
function scenarioTable(s: ScenarioResult): string {
  const head = ['', ...(s.steps ? [''] : [])]
  for (const m of s.metrics) head.push(m.label, ...(m.ratio ? ['× ws'] : []))
  const lines = [
    `| ${head.join(' | ')} |`,
    `|${head.map((_, i) => (i === 0 || (s.steps && i === 1) ? ' --- ' : ' ---: ')).join('|')}|`,
  ]
  for (const r of s.rows)
    for (const step of s.steps ?? [undefined]) {
      const cells = [LABELS[r.kind], ...(step === undefined ? [] : [stepLabel(step, s.stepUnit ?? '')])]
      for (const m of s.metrics) {
        const key = step === undefined ? m.key : `${m.key}@${step}`
        cells.push(fmtSpread(spread(r.values[key] ?? []), m.digits, s.reps === 1))
        if (m.ratio)
          cells.push(r.kind === 'ws' ? '1' : fmtSpread(spread(r.ratios[key] ?? []), 2, s.reps === 1))
      }
      lines.push(`| ${cells.join(' | ')} |`)
    }
  const notes = s.rows.flatMap((r) => [
    ...(r.skipped ? [`${LABELS[r.kind]}: skipped: ${r.skipped}`] : []),
    ...r.notes.map((n) => `${LABELS[r.kind]}: ${n}`),
    ...r.errors.map((e) => `${LABELS[r.kind]}: **failed** ${e}`),
  ])
  return [lines.join('\n'), ...(notes.length ? [notes.map((n) => `- ${n}`).join('\n')] : [])].join('\n\n')
}

/** Multi-node scenarios have a section of their own in the docs (`writeDocs(..., 'cluster')`). */
const isCluster = (s: ScenarioResult) => s.params.nodes !== undefined
/** So has the cost of metrics (`writeDocs(..., 'metrics')`): Parley against itself, no ws. */
export const isMetrics = (s: { name: ScenarioName }) => s.name === 'metrics'

/** The run, the machine and the versions; `noRatios` says why the tables have no `× ws`. */
function header(r: Report, noRatios?: string): string[] {
  const ratios = noRatios === undefined
  const out: string[] = []
  out.push(
    `Run of ${r.date.slice(0, 10)}, ${Math.round(r.seconds)} s${r.quick ? ' (quick mode: tiny counts, not a measurement)' : ''}. ` +
      'Each cell: the median over repetitions, with min–max in brackets' +
      (ratios
        ? '; `× ws` is the ratio to raw ws measured in the same repetition, then its median (min–max) over repetitions.'
        : ` (no raw ws here: ${noRatios}).`),
  )
  out.push(
    '**Machine**: ' +
      `${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.memoryGiB} GiB, ${r.machine.os}, Node ${r.machine.node}` +
      `${r.machine.load ? `; load average ${r.machine.load} (1 / 5 / 15 min) at the start` : ''}.`,
  )
  out.push(
    `**Versions**: ${Object.entries(r.versions)
      .map(([k, v]) => `${k} ${v}`)
      .join('; ')}.`,
  )
  out.push(`**HTTP client of the load generator**: ${FETCH_LABELS[r.fetch]}.`)
  out.push(
    `**V8 flags of the load generator** (servers run with V8's defaults): ${LOAD_FLAGS.map((f) => `\`${f}\``).join(' ')}; why: \`LOAD_FLAGS\` in bench/src/config.ts.`,
  )
  return out
}

function goalsTable(goals: readonly Goal[]): string {
  const lines = ['| target | limit | Parley | beside it | |', '| --- | --- | ---: | --- | --- |']
  for (const g of goals)
    lines.push(
      `| ${g.goal} | ${g.limit} | ${fmt(g.parley, 2)} | ${fmt(g.reference, 2)} (${g.referenceLabel}) | ${g.met ? 'met' : '**missed**'} |`,
    )
  return lines.join('\n')
}

function scenarioSection(s: ScenarioResult): string[] {
  return [
    `### ${s.title}`,
    `${s.reps} repetition${s.reps === 1 ? '' : 's'}; ${Object.entries(s.params)
      .map(([k, v]) => `${k} ${v}`)
      .join(
        ', ',
      )}${s.steps ? `; steps ${s.steps.map((n) => stepLabel(n, s.stepUnit ?? '')).join(', ')}` : ''}.`,
    scenarioTable(s),
  ]
}

const CLUSTER_GOAL = /^Three nodes/

const BUNDLE_LABELS = {
  parley: '@parley/client, dist/parley.min.js as shipped (WebSocket, SSE, polling)',
  parleyEsm:
    "@parley/client as an application gets it: esbuild of `import { connect } from '@parley/client'` (bundle, minify, browser, ESM, through the package's exports)",
  socketio: 'socket.io-client, bundled by esbuild (bundle, minify, browser, IIFE)',
} as const

/** The generated part for the single-node scenarios and the bundle. */
export function renderMarkdown(r: Report): string {
  const out = header(r)
  const goals = r.goals.filter((g) => !CLUSTER_GOAL.test(g.goal))
  if (goals.length) {
    out.push('### Targets (issue 14)')
    out.push(goalsTable(goals))
    out.push(
      '"Beside it" is what the target holds Parley to, or, for a fixed limit, the comparable row ' +
        'for reading (socket.io polling where Parley uses SSE, as socket.io has no SSE). Idle ' +
        'memory is read at the most connections this run measured.',
    )
  }
  for (const s of r.scenarios) if (!isCluster(s) && !isMetrics(s)) out.push(...scenarioSection(s))
  if (r.bundle) {
    out.push('### Client bundle')
    out.push(
      [
        '| | minified bytes | min+gzip bytes | min+gzip KB |',
        '| --- | ---: | ---: | ---: |',
        ...(['parley', 'parleyEsm', 'socketio'] as const).flatMap((k) => {
          const size = r.bundle![k]
          return size
            ? [
                `| ${BUNDLE_LABELS[k]} | ${size.minBytes} | ${size.gzipBytes} | ${fmt(size.gzipBytes / 1024, 1)} |`,
              ]
            : []
        }),
      ].join('\n'),
    )
  }
  return out.join('\n\n')
}

/** The generated part for the multi-node scenarios (a section of the docs of its own). */
export function renderClusterMarkdown(r: Report): string {
  const out = header(r, 'it has no adapter')
  if (r.clusterVersions)
    out.push(
      `**Around the nodes**: ${Object.entries(r.clusterVersions)
        .map(([k, v]) => `${k} ${v}`)
        .join('; ')}.`,
    )
  const goals = r.goals.filter((g) => CLUSTER_GOAL.test(g.goal))
  if (goals.length) {
    out.push('### Targets: Parley against socket.io, both on Redis')
    out.push(goalsTable(goals))
  }
  for (const s of r.scenarios) if (isCluster(s)) out.push(...scenarioSection(s))
  return out.join('\n\n')
}

/**
 * What a prom-client registry costs the server per message, from the `metrics` scenario: per
 * repetition, the CPU per message with the registry minus (and over) the CPU without it, both
 * measured in that repetition; then median (min–max) over repetitions.
 */
export function metricsCost(r: Report): { usPerMsg: Spread; share: Spread } | undefined {
  const s = r.scenarios.find(isMetrics)
  const cpu = (kind: ClientKind) => s?.rows.find((x) => x.kind === kind)?.values.cpuUsPerMsg ?? []
  const without = cpu('parley-websocket')
  const withRegistry = cpu('parley-metrics')
  if (without.length === 0 || withRegistry.length === 0) return undefined
  const pairs = without.map((off, i) => [off, withRegistry[i] ?? Number.NaN] as const)
  return {
    usPerMsg: spread(pairs.map(([off, on]) => on - off)),
    share: spread(pairs.map(([off, on]) => on / off - 1)),
  }
}

/** The generated part for the cost of metrics (a section of the docs of its own). */
export function renderMetricsMarkdown(r: Report): string {
  const out = header(r, 'both rows are Parley, without and with a registry')
  for (const s of r.scenarios) if (isMetrics(s)) out.push(...scenarioSection(s))
  const cost = metricsCost(r)
  if (cost) {
    const single = cost.usPerMsg.min === cost.usPerMsg.max
    const pct = (v: Spread) => ({ median: v.median * 100, min: v.min * 100, max: v.max * 100 })
    out.push(
      `**What the registry costs**: ${fmtSpread(cost.usPerMsg, 2, single)} µs of server CPU per ` +
        `message, ${fmtSpread(pct(cost.share), 1, single)} % of the server CPU per message without ` +
        'it (with minus without, in the same repetition; median and min–max over repetitions).',
    )
  }
  return out.join('\n\n')
}

/** The same, shorter, for the terminal. */
export function renderText(r: Report): string {
  const lines = [`${r.quick ? 'quick run' : 'run'}: ${Math.round(r.seconds)} s, Parley over ${r.fetch} fetch`]
  const cost = metricsCost(r)
  if (cost)
    lines.push(
      `metrics: a prom-client registry costs ${fmt(cost.usPerMsg.median, 2)} µs/msg of server CPU (${fmt(cost.share.median * 100, 1)} %)`,
    )
  for (const g of r.goals)
    lines.push(
      `${g.met ? 'met   ' : 'MISSED'} ${g.goal} ${g.limit}: Parley ${fmt(g.parley, 2)}, ${g.referenceLabel} ${fmt(g.reference, 2)}`,
    )
  return lines.join('\n')
}

/**
 * Replaces a generated part of `file` (the main one, or a named one such as `cluster`), keeping
 * what people wrote around it. A named part missing from the file is added at its end.
 */
export function writeDocs(file: string, generated: string, part?: string) {
  const tag = part ? `bench:${part}` : 'bench'
  const BEGIN = `<!-- ${tag}:begin (written by \`pnpm bench\`; edit outside these markers) -->`
  const END = `<!-- ${tag}:end -->`
  const block = `${BEGIN}\n\n${generated}\n\n${END}`
  if (existsSync(file)) {
    const text = readFileSync(file, 'utf8')
    const a = text.indexOf(BEGIN)
    const b = text.indexOf(END)
    if (a >= 0 && b > a) {
      writeFileSync(file, `${text.slice(0, a)}${block}${text.slice(b + END.length)}`)
      return
    }
    if (part) {
      writeFileSync(file, `${text.trimEnd()}\n\n${block}\n`)
      return
    }
  }
  writeFileSync(file, `# Benchmarks\n\n${block}\n`)
}
