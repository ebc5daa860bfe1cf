// Runs `pnpm bench --quick --only idle,fanout,size` (tiny counts, one repetition): the scenarios
// of how cost grows with work, which the plain quick run leaves out. Every step of every row
// must come with numbers that make sense; never a speed target. broadcast-heavy is the
// broadcast scenario at another rate, which quick.test.ts covers.
import { describe, expect, it } from 'vitest'
import type { Report } from '../src/report.ts'
import { runBench } from './run-bench.ts'

const quickRun = (): Promise<Report> => runBench(['--quick', '--only', 'idle,fanout,size'])

describe('pnpm bench --quick --only idle,fanout,size', () => {
  it('reports every step of every scenario, for every client', { timeout: 290_000 }, async () => {
    const report = await quickRun()
    expect(report.scenarios.map((s) => s.name)).toEqual(['idle', 'fanout', 'size'])
    for (const s of report.scenarios) {
      expect(s.steps?.length, s.name).toBeGreaterThan(1)
      for (const row of s.rows)
        for (const step of s.steps ?? []) {
          const where = `${s.name} ${row.kind} ${step}`
          expect(row.errors, where).toEqual([])
          for (const metric of s.metrics) {
            const [value] = row.values[`${metric.key}@${step}`] ?? []
            expect(Number.isFinite(value), `${where} ${metric.key}`).toBe(true)
            // Memory deltas of a few connections may round to zero or below; the rest is positive.
            if (s.name !== 'idle' || !metric.key.endsWith('PerConn'))
              expect(value, `${where} ${metric.key}`).toBeGreaterThanOrEqual(0)
          }
        }
    }
    const value = (scenario: string, kind: string, key: string) =>
      report.scenarios.find((s) => s.name === scenario)?.rows.find((r) => r.kind === kind)?.values[
        key
      ]?.[0] ?? -1
    expect(value('idle', 'socketio-thin-polling', 'connectsPerSec@50')).toBeGreaterThan(0)
    // A WebSocket client holds one connection on the server, and the count says so.
    expect(value('idle', 'parley-thin-websocket', 'connectionsPerClient@50')).toBeCloseTo(1, 1)
    // How much of RSS is V8's young generation: read for every server (it may be negative, when
    // V8 gave back what it held at the warm-up's reading).
    const idleRows = report.scenarios.find((s) => s.name === 'idle')?.rows ?? []
    for (const row of idleRows) expect(row.values['youngKBPerConn@50']?.[0], row.kind).toBeTypeOf('number')
    // Steps this small fit under any open-files limit: each holds its whole count.
    for (const row of idleRows) expect(row.values['held@50']?.[0], row.kind).toBe(50)
    expect(value('fanout', 'parley-thin-sse', 'recipients@10')).toBe(10)
    expect(value('fanout', 'parley-thin-polling', 'allReceivedMs@10')).toBeGreaterThan(0)
    expect(value('size', 'parley-thin-websocket', 'msgsPerSec@1048576')).toBeGreaterThan(0)
    // Every size step is measured over some echoes, however busy the machine: the server's CPU
    // per byte is a reading, never 0 (a window without an echo would leave it out).
    const sizeScenario = report.scenarios.find((s) => s.name === 'size')
    for (const row of sizeScenario?.rows ?? [])
      for (const step of sizeScenario?.steps ?? [])
        expect(row.values[`cpuNsPerByte@${step}`]?.[0], `${row.kind} ${step}`).toBeGreaterThan(0)
    // The idle targets are read even from a handful of connections (their numbers mean nothing then).
    expect(report.goals.filter((g) => g.goal.startsWith('Idle')).length).toBe(4)
  })
})
