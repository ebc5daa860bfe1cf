// A session cut as a slow consumer in the middle of a steady stream of events: every event is
// handled once, by the cut session or by the next one. The server paces its ACKs, so at the cut
// the client still keeps the events the session handled in its last moments; a cut that drops
// the ACK the session owed with everything else queued for the client would have the client
// send those events again into its next session. The Parley client against the real server.
import type { TransportName } from '@parley/protocol'
import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { client, closeAll, next, parleyOf, startServer, until } from './helpers.js'

afterEach(closeAll)

const EVENTS = 120
/** The event whose handler sends the client more than `maxBufferedBytes` at once. */
const CUT_AT = 50
const MAX_BUFFERED = 32 * 1024

/**
 * Counts, by number, the events `n` the handlers see; the handler of event CUT_AT sends the
 * client twice `maxBufferedBytes` at once (kept for replay until the client's ACK), which ends
 * the session with 'slow consumer' (the first time only).
 */
function counter() {
  const handled = new Map<number, number>()
  const reasons: string[] = []
  let cut = false
  const setup = (app: FastifyInstance) =>
    parleyOf(app).on('connection', (socket) => {
      socket.on('disconnect', (reason: string) => reasons.push(reason))
      socket.on('n', (n: number) => {
        handled.set(n, (handled.get(n) ?? 0) + 1)
        // Once: handled again in the next session, it would cut that one too.
        if (n !== CUT_AT || cut) return
        cut = true
        const text = 'x'.repeat(4096)
        for (let i = 0; i < (2 * MAX_BUFFERED) / 4096; i++) socket.emit('big', text)
      })
    })
  return { handled, reasons, setup }
}

describe.each<TransportName>(['websocket', 'sse', 'polling'])(
  'a slow consumer cut mid-stream, on %s',
  (transport) => {
    it('leaves every event handled exactly once across the cut session and the next', async () => {
      const { handled, reasons, setup } = counter()
      const server = await startServer(setup, { maxBufferedBytes: MAX_BUFFERED })
      const socket = client(server.url, { transports: [transport] })
      await next(socket, 'connect', 5000)
      const down = next<[string]>(socket, 'disconnect', 8000)

      let sent = 0
      const stream = setInterval(() => {
        if (sent < EVENTS) socket.emit('n', ++sent)
      }, 5)
      try {
        expect((await down)[0]).toBe('slow consumer')
        await until(() => sent === EVENTS, 8000, 'every event emitted')
        await until(() => handled.size === EVENTS, 8000, 'every event handled')
      } finally {
        clearInterval(stream)
      }
      expect(reasons[0]).toBe('slow consumer')
      const twice = [...handled].filter(([, count]) => count > 1).map(([n]) => n)
      expect(twice).toEqual([])
    }, 35_000)
  },
)
