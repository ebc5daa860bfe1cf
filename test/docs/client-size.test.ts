// docs/client-size.md counts the error codes the browser bundle uses (it once said 24 of 35 long
// after both had changed): the counts it gives are those of today's code.
import { ErrorCode } from '@parley/protocol'
import { build } from 'esbuild'
import { describe, expect, it } from 'vitest'
import { prose, read, root } from './markdown.js'

const codeNames = Object.keys(ErrorCode)

/**
 * The codes the script-tag file's code names, bundled as `packages/client/build.mjs` bundles it.
 * Minified, a code the code uses is a property (`e.TOO_DEEP`, `{ INVALID_SEQ: t }`) besides its
 * entry in the list of names `ErrorCode` is built from; an unused one is that entry alone.
 */
async function codesTheBundleUses(): Promise<string[]> {
  const result = await build({
    absWorkingDir: `${root}packages/client`,
    entryPoints: ['src/browser.ts'],
    bundle: true,
    write: false,
    minify: true,
    format: 'iife',
    platform: 'browser',
    define: { 'globalThis.PARLEY_BROWSER_BUNDLE': 'true' },
    alias: { '@parley/protocol': '../protocol/src/index.ts' },
  })
  const code = result.outputFiles[0]?.text ?? ''
  return codeNames.filter((name) => (code.match(new RegExp(`\\b${name}\\b`, 'g'))?.length ?? 0) > 1)
}

describe('docs/client-size.md', () => {
  const text = prose(read('docs/client-size.md'))

  it('gives the number of codes ErrorCode has', () => {
    const counts = [...text.matchAll(/`ErrorCode` \((\d+)\s+codes\)|\b\d+\s+of\s+the\s+(\d+)\s+codes\b/g)]
    expect(counts.length).toBeGreaterThan(0)
    for (const [, total, ofTotal] of counts) expect(Number(total ?? ofTotal)).toBe(codeNames.length)
  })

  it('gives the number of codes the bundle uses', async () => {
    const said = /\b(\d+)\s+of\s+the\s+\d+\s+codes\b/.exec(text)?.[1]
    expect(Number(said)).toBe((await codesTheBundleUses()).length)
  })
})
