// Which Chromium the browser suites run: the one PARLEY_CHROMIUM names, else the first installed;
// and the contexts they open, whose waits end before their test does.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { chromiumCandidates, findChromium } from './chromium.js'

describe('findChromium', () => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-chromium-'))
  const [shell, full, missing] = ['headless-shell', 'chromium', 'nowhere'].map((name) => join(dir, name)) as [
    string,
    string,
    string,
  ]
  writeFileSync(shell, '')
  writeFileSync(full, '')
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('prefers the headless shell to the full browser', () => {
    expect(chromiumCandidates.slice(0, 2)).toEqual(['/usr/bin/chromium-headless-shell', '/usr/bin/chromium'])
    expect(findChromium({}, [shell, full])).toBe(shell)
  })

  it('takes the next one installed, and none when none is', () => {
    expect(findChromium({}, [missing, full])).toBe(full)
    expect(findChromium({}, [missing])).toBeUndefined()
  })

  it('runs the one PARLEY_CHROMIUM names before any other', () => {
    expect(findChromium({ PARLEY_CHROMIUM: full }, [shell, full])).toBe(full)
    expect(findChromium({ PARLEY_CHROMIUM: '' }, [shell, full])).toBe(shell)
  })

  it('says so when PARLEY_CHROMIUM names no file, rather than running another browser', () => {
    expect(() => findChromium({ PARLEY_CHROMIUM: missing }, [shell, full])).toThrow(
      `PARLEY_CHROMIUM=${missing} names no file`,
    )
  })
})

describe('openContext', () => {
  const root = fileURLToPath(new URL('../../', import.meta.url))
  /** The test folders of the workspace's packages and apps, and the root's. */
  const testDirs = ['apps', 'packages'].flatMap((group) =>
    readdirSync(join(root, group)).map((name) => join(group, name, 'test')),
  )

  it('is how every test opens a browser context: a wait without a timeout of its own ends at PAGE_WAIT_MS, not past its test', () => {
    const direct: string[] = []
    for (const dir of [...testDirs, 'test']) {
      let names: string[]
      try {
        names = readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
      } catch {
        continue
      }
      for (const name of names.filter((n) => n.endsWith('.ts') && !n.includes('node_modules'))) {
        const path = join(dir, name)
        if (path === join('test', 'support', 'chromium.ts')) continue
        if (/\.newContext\(/.test(readFileSync(join(root, path), 'utf8'))) direct.push(path)
      }
    }
    expect(direct).toEqual([])
  })
})
