// The source maps the packages publish lead somewhere: every file a map names (`sources`,
// which "go to definition" and stack traces open) is in the same package. Reads the file list
// of `pnpm pack --dry-run` and the built maps (the packages built first, as `pnpm test` does).
import { readFile } from 'node:fs/promises'
import { join, posix } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { pnpm } from './support/pnpm.js'

const root = fileURLToPath(new URL('..', import.meta.url))

/** What `pnpm pack --dry-run --json` says of each package it would pack. */
interface Packed {
  name: string
  files: { path: string }[]
}

/** The parts of a source map read here. */
interface SourceMap {
  sourceRoot?: string
  sources: string[]
}

describe('the packed packages', () => {
  it('ship every file their source maps name', async () => {
    const { stdout } = await pnpm(
      ['--recursive', '--filter', './packages/*', 'pack', '--dry-run', '--json'],
      root,
    )
    const packages = JSON.parse(stdout) as Packed[]
    expect(packages.map((p) => p.name).sort()).toEqual([
      '@parley/client',
      '@parley/protocol',
      '@parley/redis',
      '@parley/server',
    ])
    const missing: string[] = []
    let maps = 0
    for (const { name, files } of packages) {
      const shipped = new Set(files.map((f) => f.path))
      const dir = join(root, 'packages', name.slice('@parley/'.length))
      for (const path of shipped) {
        if (!path.endsWith('.map')) continue
        maps++
        const map = JSON.parse(await readFile(join(dir, path), 'utf8')) as SourceMap
        for (const source of map.sources) {
          const target = posix.normalize(posix.join(posix.dirname(path), map.sourceRoot ?? '', source))
          if (!shipped.has(target)) missing.push(`${name}: ${path} names ${target}`)
        }
      }
    }
    expect(maps).toBeGreaterThan(0)
    expect(missing).toEqual([])
  }, 60_000)
})
