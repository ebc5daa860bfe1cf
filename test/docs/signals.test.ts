// Every example that stops a node on SIGTERM stops it the same way on SIGINT: Ctrl+C on a node
// run by hand would otherwise end the process at once, without the drain (its sessions lost,
// not handed on) and without `app.close()`.
import { describe, expect, it } from 'vitest'
import { read, userDocs } from './markdown.js'

/** Every fenced code block of the docs, whatever its language. */
const blocks = userDocs.flatMap((doc) =>
  [...read(doc).matchAll(/^```[^\n]*\n([\s\S]*?)^```/gm)].map((match) => ({ doc, block: match[1]! })),
)

const onSigterm = blocks.filter(({ block }) => /['"]SIGTERM['"]/.test(block))

describe('the examples that handle SIGTERM', () => {
  it('are found', () => {
    expect(onSigterm.length).toBeGreaterThan(1)
  })

  it.each(onSigterm)('$doc handles SIGINT the same way', ({ block }) => {
    expect(block).toMatch(/['"]SIGINT['"]/)
  })
})
