// Which Chromium the browser suites run: the one PARLEY_CHROMIUM names, else the first installed.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
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
