// A handoff's questions wait for their replies up to handoff.timeout after the move; an adapter
// takes replies sent back only for the recovery window. With the timeout set longer, the server
// says so once as it registers.
import parley, { type Adapter, MemoryAdapter, type ParleyServerOptions } from '@parley/server'
import Fastify from 'fastify'
import { describe, expect, it } from 'vitest'

/** The server's warnings as it registers with `options` and an adapter that sends replies back. */
async function warningsOf(options: ParleyServerOptions): Promise<string[]> {
  const lines: string[] = []
  const app = Fastify({
    logger: { level: 'warn', stream: { write: (line: string) => void lines.push(line) } },
  })
  try {
    await app.register(parley, {
      ...options,
      adapter: (sockets): Adapter =>
        Object.assign(new MemoryAdapter(sockets), { forwardsReplies: () => true }),
    })
    await app.ready()
  } finally {
    await app.close()
  }
  return lines.map((line) => String(JSON.parse(line).msg))
}

const LINE = 'parley: handoff.timeout is longer than recovery.window'

describe('handoff.timeout against recovery.window', () => {
  it('warns once when the timeout outlasts the window', async () => {
    const warned = await warningsOf({ handoff: { timeout: 5000 }, recovery: { window: 1000 } })
    expect(warned.filter((msg) => msg.startsWith(LINE))).toHaveLength(1)
  })

  it('says nothing when the timeout fits in the window, or no reply is sent back', async () => {
    expect(await warningsOf({ handoff: { timeout: 1000 }, recovery: { window: 1000 } })).toEqual([])
    expect(await warningsOf({ handoff: false, recovery: { window: 1000 } })).toEqual([])
  })
})
