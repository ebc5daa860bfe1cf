// The `metrics` scenario's summary: what a prom-client registry costs per message, paired by
// repetition. `pnpm bench --quick` leaves the scenario out (its processes take seconds that the
// quick test has not to spare), so its report is checked here on made-up readings.
import { describe, expect, it } from 'vitest'
import { scenarios } from '../src/config.ts'
import { metricsCost, type Report, renderMetricsMarkdown } from '../src/report.ts'

function report(without: number[], withRegistry: number[]): Report {
  const def = scenarios(false, 3).find((s) => s.name === 'metrics')!
  const row = (kind: 'parley-websocket' | 'parley-metrics', cpu: number[]) => ({
    kind,
    values: { cpuUsPerMsg: cpu, msgsPerSec: cpu.map(() => 1000) },
    ratios: {},
    notes: [],
    errors: [],
  })
  return {
    quick: false,
    date: '2026-01-01T00:00:00.000Z',
    seconds: 60,
    machine: { cpu: 'test', cores: 2, memoryGiB: 4, os: 'test', node: process.version },
    versions: { parley: '0.0.0' },
    fetch: 'http',
    scenarios: [
      {
        name: def.name,
        title: def.title,
        params: def.params,
        reps: def.reps,
        metrics: [...def.metrics],
        rows: [row('parley-websocket', without), row('parley-metrics', withRegistry)],
      },
    ],
    bundle: undefined,
    goals: [],
  }
}

describe('the cost of metrics', () => {
  it('pairs each repetition with and without a registry, and reports median and range', () => {
    const cost = metricsCost(report([10, 8, 9, 10, 12], [11, 9, 9.9, 13, 12.6]))!
    expect(cost.usPerMsg.median).toBeCloseTo(1, 6)
    expect(cost.usPerMsg.min).toBeCloseTo(0.6, 6)
    expect(cost.usPerMsg.max).toBeCloseTo(3, 6)
    expect(cost.share.median).toBeCloseTo(0.1, 6)
    const markdown = renderMetricsMarkdown(report([10, 8, 9, 10, 12], [11, 9, 9.9, 13, 12.6]))
    expect(markdown).toContain('| Parley, WebSocket, with a prom-client registry |')
    expect(markdown).toContain('**What the registry costs**: 1.00 (0.60–3.00) µs of server CPU per message')
  })

  it('is at least five repetitions long in a full run', () => {
    expect(scenarios(false, 3).find((s) => s.name === 'metrics')?.reps).toBe(5)
    expect(scenarios(false, 7).find((s) => s.name === 'metrics')?.reps).toBe(7)
    expect(metricsCost(report([], []))).toBeUndefined()
  })
})
