import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { runInNewContext } from 'node:vm'
import { describe, expect, it } from 'vitest'
import * as index from '../src/index.js'

const clientDir = fileURLToPath(new URL('..', import.meta.url))

// Bundle size is deterministic (same sources, same esbuild, same gzip level): a budget can be a
// test. `pnpm size` prints the same numbers, with what each input file adds.
describe('browser bundle', () => {
  it('stays within its min+gzip budget', () => {
    let out: string
    try {
      out = execFileSync(process.execPath, ['build.mjs', '--size'], { cwd: clientDir, encoding: 'utf8' })
    } catch (err) {
      // Exit code 1: over budget. Show the report, which says by how much and where.
      out = (err as { stdout?: string }).stdout ?? String(err)
    }
    const gzip = Number(/(\d+) bytes min\+gzip/.exec(out)?.[1])
    const budget = Number(/budget: (\d+)/.exec(out)?.[1])
    expect(budget, out).toBeGreaterThan(0)
    expect(gzip, out).toBeLessThanOrEqual(budget)
  })

  it('defines the global Parley with every value the module exports', () => {
    execFileSync(process.execPath, ['build.mjs'], { cwd: clientDir })
    const page: { Parley?: Record<string, unknown> } = {}
    runInNewContext(readFileSync(`${clientDir}/dist/parley.min.js`, 'utf8'), page)
    const Parley = page.Parley!
    expect(Object.keys(Parley).sort()).toEqual(Object.keys(index).sort())
    expect(typeof Parley.connect).toBe('function')
    expect((Parley.ErrorCode as Record<string, string>).QUEUE_FULL).toBe('PARLEY_QUEUE_FULL')
    expect((Parley.CloseReason as Record<string, string>).PING_TIMEOUT).toBe('ping timeout')
  })
})
