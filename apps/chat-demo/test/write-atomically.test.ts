// The page's bundle replaced whole: a reader never gets half of it while another build writes it.
import { mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { writeAtomically } from '../write-atomically.mjs'

describe('the page bundle written by build.mjs', () => {
  let dir: string
  let path: string

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'write-atomically-'))
    path = join(dir, 'app.js')
  })

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('leaves a reader that opened the old bundle reading it whole, and the next reader the new one', async () => {
    const old = 'the old bundle;'.repeat(20)
    await writeFile(path, old)
    // A server that opened the file before the build reads it after: written in place, the
    // same file would hold the new bytes, or nothing past a truncation, by then.
    const reading = await open(path, 'r')
    try {
      await writeAtomically(path, 'new')
      expect(await reading.readFile('utf8')).toBe(old)
    } finally {
      await reading.close()
    }
    expect(await readFile(path, 'utf8')).toBe('new')
    expect(await readdir(dir)).toEqual(['app.js'])
  })

  it('gives each of two builds at once its own temporary file: one bundle whole is left, no temporary one', async () => {
    const first = 'a'.repeat(200_000)
    const second = 'b'.repeat(200_000)
    await Promise.all([writeAtomically(path, first), writeAtomically(path, second)])
    expect([first, second]).toContain(await readFile(path, 'utf8'))
    expect(await readdir(dir)).toEqual(['app.js'])
  })

  it('removes its temporary file when the rename fails, and says why', async () => {
    // A directory where the file goes: the rename onto it fails.
    await rm(path, { force: true })
    await mkdir(path)
    await expect(writeAtomically(path, 'new')).rejects.toMatchObject({ code: expect.stringMatching(/^E/) })
    expect(await readdir(dir)).toEqual(['app.js'])
  })
})
