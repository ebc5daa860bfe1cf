import { mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { pruneCompiled } from './support/compiled-script.js'

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
    // Being written by another process: not a compiled file yet.
    file('old.mjs.1234', 2 * 86_400_000)
    pruneCompiled(dir, now - 86_400_000)
    expect(readdirSync(dir).sort()).toEqual(['old.mjs.1234', 'recent.mjs'])
  })
})
