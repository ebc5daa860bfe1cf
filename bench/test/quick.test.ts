// Runs `pnpm bench --quick` (tiny counts, one repetition) so that the harness cannot rot: every
// scenario must report every client with numbers that make sense. Never a speed target: the
// machine running the tests is busy with other tests.
import { describe, expect, it } from 'vitest'
import type { Report } from '../src/report.ts'
import { runBench } from './run-bench.ts'

const quickRun = (): Promise<Report> => runBench(['--quick'])

describe('pnpm bench --quick', () => {
  it('reports every scenario, for every client, with sane numbers', { timeout: 290_000 }, async () => {
    const report = await quickRun()
    expect(report.quick).toBe(true)
    expect(report.scenarios.map((s) => s.name)).toEqual([
      'echo',
      'echo-steady',
      'acks',
      'broadcast',
      'memory',
      'setup',
      'fallback',
    ])
    for (const s of report.scenarios) {
      for (const row of s.rows) {
        const where = `${s.name} ${row.kind}`
        expect(row.errors, where).toEqual([])
        for (const metric of s.metrics) {
          const [value] = row.values[metric.key] ?? []
          // Deliveries per HTTP request: none over WebSocket; over SSE only if an ACK's POST
          // fell in the window; every polling answer is one.
          if (metric.key === 'deliveriesPerRequest' && !row.kind.includes('polling')) {
            if (!row.kind.includes('sse'))
              expect(Number.isFinite(value), `${where} ${metric.key}`).toBe(false)
            continue
          }
          expect(Number.isFinite(value), `${where} ${metric.key}`).toBe(true)
          // Memory deltas of a few connections may round to zero or below; the rest is positive.
          if (s.name !== 'memory') expect(value, `${where} ${metric.key}`).toBeGreaterThanOrEqual(0)
          const reference = s.rows.find((r) => r.kind === 'ws')?.values[metric.key]?.[0] ?? 0
          if (metric.ratio && reference > 0)
            expect(Number.isFinite(row.ratios[metric.key]?.[0]), `${where} ratio`).toBe(true)
        }
      }
    }
    const value = (scenario: string, kind: string, key: string) =>
      report.scenarios.find((s) => s.name === scenario)?.rows.find((r) => r.kind === kind)?.values[
        key
      ]?.[0] ?? -1
    for (const kind of [
      'ws',
      'parley-websocket',
      'parley-sse',
      'parley-polling',
      'socketio-websocket',
      'socketio-polling',
    ]) {
      expect(value('echo', kind, 'msgsPerSec'), kind).toBeGreaterThan(0)
      expect(value('acks', kind, 'msgsPerSec'), kind).toBeGreaterThan(0)
      expect(value('setup', kind, 'connectsPerSec'), kind).toBeGreaterThan(0)
      expect(value('broadcast', kind, 'deliveredShare'), kind).toBeGreaterThan(0.5)
      expect(value('broadcast', kind, 'deliveredShare'), kind).toBeLessThanOrEqual(1)
      expect(value('echo', kind, 'rttP99Ms'), kind).toBeGreaterThanOrEqual(value('echo', kind, 'rttP50Ms'))
    }
    // The steady echo offers every server the same messages: each one answers all of them.
    for (const kind of ['ws', 'parley-websocket', 'socketio-websocket'])
      expect(value('echo-steady', kind, 'echoedShare'), kind).toBe(1)
    // A hanging WebSocket costs the default client its connect timeout, then it falls back.
    expect(value('fallback', 'parley', 'hangMs')).toBeGreaterThan(value('fallback', 'parley', 'passMs'))
    expect(report.bundle?.parley.gzipBytes).toBeGreaterThan(1000)
    expect(report.bundle?.parley.gzipBytes).toBeLessThan(report.bundle?.parley.minBytes ?? 0)
    expect(report.bundle?.socketio.gzipBytes).toBeGreaterThan(1000)
    expect(report.bundle?.parleyEsm?.gzipBytes).toBeGreaterThan(1000)
    // Issue 14's targets that a quick run measures (no idle connections, no thin clients:
    // growth.test.ts runs those).
    expect(report.goals.map((g) => g.goal)).toHaveLength(11)
    for (const g of report.goals) expect(Number.isFinite(g.parley), g.goal).toBe(true)
    expect(report.machine.node).toBe(process.version)
    expect(report.fetch).toBe('http')
  })
})
