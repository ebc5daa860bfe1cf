import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { runInNewContext } from 'node:vm'
import { beforeAll, describe, expect, it } from 'vitest'
import * as index from '../src/index.js'

const clientDir = fileURLToPath(new URL('..', import.meta.url))

// Bundle size is deterministic (same sources, same esbuild, same gzip level): a budget can be a
// test. `pnpm size` prints the same numbers, with what each input file adds.
describe('browser bundle', () => {
  /** `build.mjs --size`'s report; it exits with 1 when a file is over its budget. */
  function sizeReport(): string {
    try {
      return execFileSync(process.execPath, ['build.mjs', '--size'], { cwd: clientDir, encoding: 'utf8' })
    } catch (err) {
      // Exit code 1: over budget. Show the report, which says by how much and where. Without a
      // report the build did not finish, and the files the other tests load may be stale.
      const report = (err as { stdout?: string }).stdout ?? ''
      if (!/^budget: /m.test(report)) throw err
      return report
    }
  }

  // One build for the three tests: `--size` writes both files too, and the build takes seconds
  // of a core that the other test files share.
  let out = ''
  beforeAll(() => {
    out = sizeReport()
  })

  it("stays within its min+gzip budgets: the script-tag file, and what a user's bundler makes", () => {
    const gzip = Number(/parley\.min\.js: \d+ bytes minified, (\d+) bytes min\+gzip/.exec(out)?.[1])
    const budget = Number(/^budget: (\d+)/m.exec(out)?.[1])
    expect(budget, out).toBeGreaterThan(0)
    expect(gzip, out).toBeLessThanOrEqual(budget)
    const bundled = Number(/bundled for browsers: \d+ bytes minified, (\d+) bytes min\+gzip/.exec(out)?.[1])
    const bundledBudget = Number(/^bundled budget: (\d+)/m.exec(out)?.[1])
    expect(bundledBudget, out).toBeGreaterThan(0)
    expect(bundled, out).toBeLessThanOrEqual(bundledBudget)
    // The README's table says the same (it once read sizes two passes old).
    const readme = readFileSync(`${clientDir}/README.md`, 'utf8')
    const row = (path: string) => {
      const cells =
        readme
          .split('\n')
          .find((line) => line.startsWith(`| ${path}`))
          ?.split('|') ?? []
      return cells.slice(2, 4).map((cell) => Number(/[\d ]+/.exec(cell)?.[0]?.replaceAll(' ', '')))
    }
    expect(row('`dist/parley.min.js`'), 'packages/client/README.md, Bundle size').toEqual([gzip, budget])
    expect(
      row("`import { connect } from '@parley/client'`"),
      'packages/client/README.md, Bundle size',
    ).toEqual([bundled, bundledBudget])
    // And so does docs/client-size.md, whose first table ends each row with the size.
    const doc = readFileSync(`${clientDir}/../../docs/client-size.md`, 'utf8').split('\n')
    const size = (first: string) => {
      const line = doc.find((l) => l.startsWith(`| ${first} |`)) ?? ''
      return Number(/([\d ]+) \|$/.exec(line)?.[1]?.replaceAll(' ', ''))
    }
    expect([size('script tag'), size("a user's bundler")], 'docs/client-size.md').toEqual([gzip, bundled])
  })

  it('defines the global Parley with every value the module exports', () => {
    // A page has TextEncoder: the client encodes its goodbye (a CLOSE packet) once, when it loads.
    const page: { Parley?: Record<string, unknown>; TextEncoder: typeof TextEncoder } = { TextEncoder }
    runInNewContext(readFileSync(`${clientDir}/dist/parley.min.js`, 'utf8'), page)
    const Parley = page.Parley!
    expect(Object.keys(Parley).sort()).toEqual(Object.keys(index).sort())
    expect(typeof Parley.connect).toBe('function')
    expect((Parley.ErrorCode as Record<string, string>).QUEUE_FULL).toBe('PARLEY_QUEUE_FULL')
    expect((Parley.CloseReason as Record<string, string>).PING_TIMEOUT).toBe('ping timeout')
  })
  it('gives browser bundlers an ESM module with every value the module exports', async () => {
    const pkg = JSON.parse(readFileSync(`${clientDir}/package.json`, 'utf8')) as {
      exports: { '.': { browser: string } }
    }
    const mod = (await import(pathToFileURL(`${clientDir}/${pkg.exports['.'].browser}`).href)) as Record<
      string,
      unknown
    >
    expect(Object.keys(mod).sort()).toEqual(Object.keys(index).sort())
    expect((mod.ErrorCode as Record<string, string>).QUEUE_FULL).toBe('PARLEY_QUEUE_FULL')
  })
})
