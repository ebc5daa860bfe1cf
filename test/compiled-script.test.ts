import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import { afterEach, describe, expect, it } from 'vitest'
import { compiledFrom, pruneCompiled } from './support/compiled-script.js'

describe('the compiled scripts of the tests', () => {
  let dir: string | undefined
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true })
    dir = undefined
  })

  it('removes the compiled files last used before the bound, and nothing else', () => {
    dir = mkdtempSync(path.join(tmpdir(), 'parley-prune-'))
    const now = Date.now()
    const file = (name: string, usedAgo: number) => {
      writeFileSync(path.join(dir!, name), '')
      const time = new Date(now - usedAgo)
      utimesSync(path.join(dir!, name), time, time)
    }
    file('old.mjs', 2 * 86_400_000)
    file('recent.mjs', 60_000)
    file('old.sources.json', 2 * 86_400_000)
    file('recent.sources.json', 60_000)
    // Being written by another process: not a compiled file yet.
    file('old.mjs.1234', 2 * 86_400_000)
    pruneCompiled(dir, now - 86_400_000)
    expect(readdirSync(dir).sort()).toEqual(['old.mjs.1234', 'recent.mjs', 'recent.sources.json'])
  })

  it('builds a script again only when one of its sources changed: otherwise the file built before', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'parley-compile-'))
    const out = path.join(dir, 'out')
    const entry = path.join(dir, 'entry.ts')
    writeFileSync(entry, "import { word } from './part.js'\nconsole.log(word satisfies string)\n")
    writeFileSync(path.join(dir, 'part.ts'), "export const word = 'one'\n")
    const run = (file: string) => execFileSync(process.execPath, [file], { encoding: 'utf8' }).trim()

    const first = await compiledFrom(entry, out)
    expect(first.built).toBe(true)
    expect(run(first.file)).toBe('one')

    const again = await compiledFrom(entry, out)
    expect(again).toEqual({ file: first.file, built: false })

    writeFileSync(path.join(dir, 'part.ts'), "export const word = 'two'\n")
    const changed = await compiledFrom(entry, out)
    expect(changed.built).toBe(true)
    expect(changed.file).not.toBe(first.file)
    expect(run(changed.file)).toBe('two')
  })

  /**
   * An entry that imports an installed package `word` of its own folder's node_modules: a
   * CommonJS module that requires one of Node's own modules, as fastify, pino and ws do.
   */
  function withInstalledPackage(word: string): {
    entry: string
    out: string
    install: (word: string) => void
  } {
    dir = mkdtempSync(path.join(tmpdir(), 'parley-compile-'))
    const installed = path.join(dir, 'node_modules', 'installed-word')
    const install = (word: string) => {
      mkdirSync(installed, { recursive: true })
      writeFileSync(
        path.join(installed, 'package.json'),
        '{ "name": "installed-word", "main": "index.js" }\n',
      )
      writeFileSync(
        path.join(installed, 'index.js'),
        `const path = require('node:path')\nexports.word = path.basename('/words/${word}')\n`,
      )
    }
    install(word)
    const entry = path.join(dir, 'entry.ts')
    writeFileSync(entry, "import { word } from 'installed-word'\nconsole.log(word satisfies string)\n")
    return { entry, out: path.join(dir, 'out'), install }
  }

  const run = (file: string) => execFileSync(process.execPath, [file], { encoding: 'utf8' }).trim()

  it('bundles the installed packages: the file runs with no node_modules, their require of node: modules too', async () => {
    const { entry, out } = withInstalledPackage('one')
    const { file } = await compiledFrom(entry, out)
    rmSync(path.join(dir!, 'node_modules'), { recursive: true })
    expect(run(file)).toBe('one')
  })

  it('builds a script again when an installed file it bundles changed', async () => {
    const { entry, out, install } = withInstalledPackage('one')
    const first = await compiledFrom(entry, out)
    expect(await compiledFrom(entry, out)).toEqual({ file: first.file, built: false })

    install('two')
    const changed = await compiledFrom(entry, out)
    expect(changed.built).toBe(true)
    expect(run(changed.file)).toBe('two')
  })

  it('builds a script again when the lockfile of its workspace changed', async () => {
    const { entry, out } = withInstalledPackage('one')
    const lockfile = path.join(dir!, 'pnpm-lock.yaml')
    writeFileSync(lockfile, "lockfileVersion: '9.0'\n")
    const first = await compiledFrom(entry, out)
    expect(await compiledFrom(entry, out)).toEqual({ file: first.file, built: false })

    writeFileSync(lockfile, "lockfileVersion: '9.0'\n# another version installed\n")
    expect((await compiledFrom(entry, out)).built).toBe(true)
  })
})

describe('the compiled scripts of the tests, written from threads of one process', () => {
  let dir: string | undefined
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true })
    dir = undefined
  })

  // Vitest runs test files side by side in worker threads of one process: each may compile the
  // same script at the same moment (the cluster suites' nodes), and write the same file.
  it('writes one file from several threads at once, each write whole and none failing', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'parley-threads-'))
    const file = path.join(dir, 'same.mjs')
    const threads = 4
    // Index 0: the gate, opened once every thread is ready; index 1: how many are ready.
    const gate = new SharedArrayBuffer(8)
    const workers = Array.from(
      { length: threads },
      (_, index) =>
        new Worker(writer, {
          eval: true,
          workerData: {
            // tsx's ES module: its CommonJS one finds no module from an eval'd thread.
            tsx: pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api')).href.replace(
              /\.cjs$/,
              '.mjs',
            ),
            module: new URL('./support/compiled-script.ts', import.meta.url).href,
            file,
            gate,
            index,
            rounds: 40,
          },
        }),
    )
    try {
      const outcomes = workers.map(
        (worker) =>
          new Promise<string | null>((resolve, reject) => {
            worker.once('message', resolve)
            worker.once('error', reject)
          }),
      )
      const ready = new Int32Array(gate)
      const deadline = performance.now() + 15_000
      while (Atomics.load(ready, 1) < threads && performance.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 10))
      Atomics.store(ready, 0, 1)
      Atomics.notify(ready, 0)
      expect(await Promise.all(outcomes)).toEqual(Array(threads).fill(null))
      expect(readFileSync(file, 'utf8')).toMatch(/^(\d)\1*$/)
    } finally {
      await Promise.all(workers.map((worker) => worker.terminate()))
    }
  })
})

/**
 * A thread that imports `writeAtOnce` (through tsx: a worker is outside Vitest), waits at the
 * gate with the others, then writes the file `rounds` times, a megabyte of its own digit each
 * time. Posts null, or the first error.
 */
const writer = `
const { workerData, parentPort } = require('node:worker_threads')
;(async () => {
  const { tsImport } = await import(workerData.tsx)
  const { writeAtOnce } = await tsImport(workerData.module, workerData.module)
  const gate = new Int32Array(workerData.gate)
  Atomics.add(gate, 1, 1)
  Atomics.wait(gate, 0, 0, 15000)
  const data = String(workerData.index).repeat(1 << 20)
  try {
    for (let round = 0; round < workerData.rounds; round++) writeAtOnce(workerData.file, data)
    parentPort.postMessage(null)
  } catch (error) {
    parentPort.postMessage(String(error))
  }
})().catch((error) => parentPort.postMessage(String(error)))
`
