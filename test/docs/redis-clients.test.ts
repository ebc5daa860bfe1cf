// Every example that opens a node-redis client for Parley closes it when the app closes. The
// adapter never closes the client it is given, and the client's open connection keeps the
// process alive after `app.close()`: a node stopped by SIGTERM as the docs say would stay up
// until its orchestrator's SIGKILL, at every deploy.
import { describe, expect, it } from 'vitest'
import { read, tsBlocks, userDocs } from './markdown.js'

const opened = userDocs.flatMap((doc) =>
  tsBlocks(read(doc)).flatMap((block) => {
    const client = /const (\w+) = createClient\(/.exec(block)?.[1]
    return client ? [{ doc, client, block }] : []
  }),
)

describe('the examples that open a Redis client', () => {
  it('are found', () => {
    expect(opened.length).toBeGreaterThan(1)
  })

  it.each(opened)('$doc closes $client in an onClose hook', ({ client, block }) => {
    const hook = /app\.addHook\('onClose',[\s\S]*?\n\}\)/.exec(block)?.[0] ?? 'no onClose hook'
    expect(hook).toMatch(new RegExp(`\\b${client}\\.(close|quit|destroy)\\(\\)`))
  })
})
