// The page's bundle (`public/app.js`), built by the browser suites only when it is missing or
// older than what it is built from: `pnpm test` builds it before any suite runs, and a build in
// each suite's beforeAll cost half a second to nearly two each.
import { execFile } from 'node:child_process'
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

/** What the page's bundle is built from: every source of the demo (more than the page imports, never less) and the build script. */
const PAGE_SOURCES = [
  fileURLToPath(new URL('../src', import.meta.url)),
  fileURLToPath(new URL('../build.mjs', import.meta.url)),
]
const PAGE_OUTPUT = fileURLToPath(new URL('../public/app.js', import.meta.url))

/** The latest modification time among `path` and, for a directory, everything under it. */
async function newest(path: string): Promise<number> {
  const info = await stat(path)
  if (!info.isDirectory()) return info.mtimeMs
  const entries = await readdir(path)
  const times = await Promise.all(entries.map((entry) => newest(join(path, entry))))
  return Math.max(info.mtimeMs, ...times)
}

/** True when `output` is missing, or older than any of `sources` (files, or directories read whole). */
export async function isStale(output: string, sources: readonly string[]): Promise<boolean> {
  const built = await stat(output).then(
    (info) => info.mtimeMs,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined
      throw error
    },
  )
  if (built === undefined) return true
  const times = await Promise.all(sources.map(newest))
  return times.some((time) => time > built)
}

/** Runs `build` when `output` is stale (see `isStale`); says whether it ran. */
export async function buildIfStale(
  output: string,
  sources: readonly string[],
  build: () => Promise<unknown>,
): Promise<boolean> {
  if (!(await isStale(output, sources))) return false
  await build()
  return true
}

let pending: Promise<boolean> | undefined

/**
 * Builds the page (`node build.mjs`) unless `public/app.js` is newer than its sources; once per
 * test file however many suites of it ask.
 */
export function pageBuilt(): Promise<boolean> {
  pending ??= buildIfStale(PAGE_OUTPUT, PAGE_SOURCES, () =>
    promisify(execFile)(process.execPath, [fileURLToPath(new URL('../build.mjs', import.meta.url))]),
  )
  return pending
}
