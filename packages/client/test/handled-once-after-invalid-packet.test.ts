// A session that ends for another reason than its client's own traffic in the middle of a steady
// stream of events ('invalid packet': a POST of the session's with a packet a client may not
// send), while the client keeps POSTing: every event is handled once, by the ended session or by
// the next one. The client's POSTs after the end meet a session that is gone; whatever they are
// answered, the ACK the session owed must reach the client before it starts its next session,
// or it sends again what the ended one handled. The Parley client against the real server.
import type { TransportName } from '@parley/protocol'
import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { client, closeAll, next, pacedFetch, parleyOf, startServer, until } from './helpers.js'

afterEach(closeAll)

const EVENTS = 120

/** Counts, by number, the events `n` the handlers see, and the reasons sessions end. */
function counter() {
  const handled = new Map<number, number>()
  const reasons: string[] = []
  const setup = (app: FastifyInstance) =>
    parleyOf(app).on('connection', (socket) => {
      socket.on('disconnect', (reason: string) => reasons.push(reason))
      socket.on('n', (n: number) => handled.set(n, (handled.get(n) ?? 0) + 1))
    })
  return { handled, reasons, setup }
}

describe.each<TransportName>(['sse', 'polling'])(
  'a session ended by a bad POST mid-stream, on %s',
  (transport) => {
    it('leaves every event handled exactly once across the ended session and the next', async () => {
      const { handled, reasons, setup } = counter()
      const server = await startServer(setup)
      // The session's URL, as the client's requests name it; polling at a pace that leaves the
      // client's POSTs time to meet the ended session before its next GET.
      let sessionUrl: string | undefined
      const paced = transport === 'polling' ? pacedFetch(100) : fetch
      const spy: typeof fetch = (input, init) => {
        const url = String(input)
        if (url.includes('sid=')) sessionUrl ??= url.replace(/&ack=\d+/, '')
        return paced(input, init)
      }
      const socket = client(server.url, { transports: [transport], fetch: spy })
      await next(socket, 'connect', 5000)
      const down = next<[string]>(socket, 'disconnect', 8000)

      let sent = 0
      const stream = setInterval(() => {
        if (sent < EVENTS) socket.emit('n', ++sent)
      }, 5)
      try {
        await until(
          () => handled.size >= EVENTS / 3 && sessionUrl !== undefined,
          5000,
          'a third of the events',
        )
        // A PING from the client's side: a packet a client may not send. The POST is answered 204
        // (409 while one of the client's own is read: then again), and the session ends.
        for (let tries = 0; tries < 50 && reasons.length === 0; tries++) {
          const res = await fetch(sessionUrl!, { method: 'POST', body: '[2]' })
          await res.arrayBuffer()
          if (res.status !== 409) break
        }
        expect((await down)[0]).toBe('invalid packet')
        await until(() => sent === EVENTS, 8000, 'every event emitted')
        await until(() => handled.size === EVENTS, 8000, 'every event handled')
      } finally {
        clearInterval(stream)
      }
      expect(reasons[0]).toBe('invalid packet')
      const twice = [...handled].filter(([, count]) => count > 1).map(([n]) => n)
      expect(twice).toEqual([])
    }, 40_000)
  },
)
