// The last POSTs of an HTTP transport at disconnect() go one after another, each once the one
// before it is answered. A server that holds its answers (stalled, or behind a proxy that
// swallows them) kept a Node process alive a heartbeat window per body, each POST bounded on its
// own. They now share one deadline, a window from the disconnect(): past it, what is left is
// dropped, and the process exits. Real server behind the fault proxy, which passes the POSTs on
// and drops the server's answers; the client in a process of its own, on long-polling (whose
// heartbeat needs no POST of its own).
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { startFaultProxy } from '../../../test/support/fault-proxy.js'
import { startChild } from './child-process.js'
import { own, parleyOf, until } from './helpers.js'

const CHILD = fileURLToPath(new URL('./held-posts-child.ts', import.meta.url))

/** pingInterval + pingTimeout: the bound of one POST, in ms. */
const WINDOW = 3000
/** The notes the child sends before its disconnect(), each in a body of its own, and their size. */
const NOTES = 4
const NOTE_SIZE = 6000

describe('the last POSTs at disconnect(), their answers held, in Node', () => {
  it('share one deadline: the first goes, the rest are dropped once it passed, and the process exits', async (context) => {
    const test = own(context)
    const notes: number[] = []
    const server = await test.server(
      (app) => parleyOf(app).on('connection', (peer) => peer.on('note', (n: number) => notes.push(n))),
      // Each note alone in a body: two together pass maxPayload.
      { pingInterval: 2000, pingTimeout: WINDOW - 2000, maxPayload: NOTE_SIZE + 4000 },
    )
    const proxy = test.later(await startFaultProxy(server.port))
    const child = await startChild(CHILD, [proxy.url, String(NOTES), String(NOTE_SIZE)], {
      stdin: true,
      mark: 'left',
    })
    test.later({ close: async () => child.kill() })
    await until(() => child.out.includes('open'), 10_000, 'the child to connect')
    proxy.posts = 'mute'
    child.write('go\n')
    expect(await child.exit()).toBe(0)
    expect(child.out).toContain('left client disconnect')
    // One window and the process's own end; a window per body was NOTES of them.
    expect(child.sinceMark()).toBeLessThan((NOTES - 1) * WINDOW)
    // The server got the first body, whose answer never came, and nothing after it.
    expect(notes).toEqual([1])
    expect(proxy.unanswered).toBe(1)
  })
})
