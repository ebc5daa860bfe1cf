import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

// Bundle size is deterministic (same sources, same esbuild, same gzip level): a budget can be a
// test. `pnpm size` prints the same numbers, with what each input file adds.
describe('browser bundle', () => {
  it('stays within its min+gzip budget', () => {
    let out: string
    try {
      out = execFileSync(process.execPath, ['build.mjs', '--size'], {
        cwd: fileURLToPath(new URL('..', import.meta.url)),
        encoding: 'utf8',
      })
    } catch (err) {
      // Exit code 1: over budget. Show the report, which says by how much and where.
      out = (err as { stdout?: string }).stdout ?? String(err)
    }
    const gzip = Number(/(\d+) bytes min\+gzip/.exec(out)?.[1])
    const budget = Number(/budget: (\d+)/.exec(out)?.[1])
    expect(budget, out).toBeGreaterThan(0)
    expect(gzip, out).toBeLessThanOrEqual(budget)
  })
})
