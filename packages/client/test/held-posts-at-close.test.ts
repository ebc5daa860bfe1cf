// The last POSTs of an HTTP transport at disconnect() go one after another, each once the one
// before it is answered. A server that holds its answers (stalled, or behind a proxy that
// swallows them) kept a Node process alive a heartbeat window per body, each POST bounded on its
// own. They now share one deadline, a window from the disconnect(), and a POST left unanswered
// through its whole bound ends the sending: what is left is dropped, and the process exits. Real
// server behind the fault proxy, which passes the POSTs on and drops the server's answers; the
// client in a process of its own, on long-polling (whose heartbeat needs no POST of its own).
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
  // Gap: how long the first note's POST is in flight before the rest and the disconnect(). At 0,
  // its bound ends a sliver before the deadline (less than nothing on the deadline's clock, or a
  // few ms); at half a window, half a window before it, time enough for the next POST to reach
  // the server, were it sent.
  it.for([0, WINDOW / 2])(
    'the first goes, nothing after it once it went unanswered, and the process exits (gap %i ms)',
    async (gap, context) => {
      const test = own(context)
      const notes: number[] = []
      const server = await test.server(
        (app) => parleyOf(app).on('connection', (peer) => peer.on('note', (n: number) => notes.push(n))),
        // Each note alone in a body: two together pass maxPayload.
        { pingInterval: 2000, pingTimeout: WINDOW - 2000, maxPayload: NOTE_SIZE + 4000 },
      )
      const proxy = test.later(await startFaultProxy(server.port))
      const child = await startChild(CHILD, [proxy.url, String(NOTES), String(NOTE_SIZE), String(gap)], {
        stdin: true,
      })
      test.later({ close: async () => child.kill() })
      await until(() => child.out.includes('open'), 10_000, 'the child to connect')
      proxy.posts = 'mute'
      child.write('go\n')
      // Bounded far from what the deadline allows: a window per body would be NOTES of them.
      expect(await child.exit(5 * NOTES * WINDOW)).toBe(0)
      expect(child.out).toContain('left client disconnect')
      // The server got the first body, whose answer never came, and nothing after it: not even
      // the CLOSE, whose POST would have gone next.
      expect(notes).toEqual([1])
      expect(proxy.unanswered).toBe(1)
    },
  )
})
