// The browser suites' page build: run only when the bundle is missing or older than a source.
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { buildIfStale, isStale } from './page-build.js'

describe('the page build of the browser suites', () => {
  let dir: string
  let output: string
  let sources: string[]
  /** Sets `path`'s modification time `seconds` after a fixed moment. */
  const at = (path: string, seconds: number) => utimes(path, 1_700_000_000 + seconds, 1_700_000_000 + seconds)

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'page-build-'))
    output = join(dir, 'app.js')
    await mkdir(join(dir, 'src', 'page'), { recursive: true })
    await writeFile(join(dir, 'src', 'page', 'main.ts'), '')
    await writeFile(join(dir, 'build.mjs'), '')
    await at(join(dir, 'src', 'page', 'main.ts'), 0)
    await at(join(dir, 'src', 'page'), 0)
    await at(join(dir, 'src'), 0)
    await at(join(dir, 'build.mjs'), 0)
    sources = [join(dir, 'src'), join(dir, 'build.mjs')]
  })

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('builds when the bundle is missing', async () => {
    expect(await isStale(output, sources)).toBe(true)
    let builds = 0
    expect(
      await buildIfStale(output, sources, async () => {
        builds++
        await writeFile(output, 'built')
      }),
    ).toBe(true)
    expect(builds).toBe(1)
  })

  it('does not build when the bundle is newer than every source', async () => {
    await writeFile(output, 'built')
    await at(output, 10)
    let builds = 0
    expect(await buildIfStale(output, sources, async () => void builds++)).toBe(false)
    expect(builds).toBe(0)
  })

  it.each([
    ['a source deep in a directory', ['src', 'page', 'main.ts']],
    ['the build script', ['build.mjs']],
  ])('builds when %s is newer than the bundle', async (_what, path) => {
    await writeFile(output, 'built')
    await at(output, 10)
    await at(join(dir, ...path), 20)
    expect(await isStale(output, sources)).toBe(true)
  })

  it('builds when a file was added to a source directory since', async () => {
    await writeFile(output, 'built')
    await at(output, 10)
    await writeFile(join(dir, 'src', 'page', 'new.ts'), '')
    await at(join(dir, 'src', 'page', 'new.ts'), 5)
    // The directory's own time moves with the file added, as a real edit's does.
    await at(join(dir, 'src', 'page'), 20)
    expect(await isStale(output, sources)).toBe(true)
  })
})
