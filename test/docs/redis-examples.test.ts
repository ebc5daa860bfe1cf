// The examples on @parley/redis hold to what a node of a cluster needs beyond one node's code.
// Every example that opens a node-redis client closes it when the app closes: the adapter never
// closes the client it is given, and the client's open connection keeps the process alive after
// `app.close()`, so that a node stopped by SIGTERM as the docs say would stay up until its
// orchestrator's SIGKILL, at every deploy. And every one that registers per-socket handlers on
// `connection` registers them on `restored` too: a session handed off by a draining node arrives
// with `restored` alone, and would have none of its handlers after every rolling deploy.
import { describe, expect, it } from 'vitest'
import { read, tsBlocks, userDocs } from './markdown.js'

const examples = userDocs.flatMap((doc) => tsBlocks(read(doc)).map((block) => ({ doc, block })))

const opened = examples.flatMap(({ doc, block }) => {
  const client = /const (\w+) = createClient\(/.exec(block)?.[1]
  return client ? [{ doc, client, block }] : []
})

const clustered = examples.filter(
  ({ block }) => block.includes('redisAdapter(') && /\.on\('connection'/.test(block),
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

describe('the examples on @parley/redis with a connection handler', () => {
  it('are found', () => {
    expect(clustered.length).toBeGreaterThan(0)
  })

  it.each(clustered)('$doc registers it on restored too', ({ block }) => {
    expect(block).toMatch(/\.on\('restored'/)
  })
})
