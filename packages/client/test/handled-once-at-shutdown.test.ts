// A plain shutdown (one node, no handoff) in the middle of a steady stream of events: every event
// is handled once across the closing server and the next one on its address. The server paces
// its ACKs, so the events it handled in its last moments would otherwise still be in the client's
// ledger at the CLOSE, and go again to the next server. The Parley client against the real
// server, on each transport.
import type { ParleyError, TransportName } from '@parley/protocol'
import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { client, closeAll, next, pacedFetch, parleyOf, startServer, until } from './helpers.js'

afterEach(closeAll)

const EVENTS = 120

/** Counts, by number, the events `n` that the handlers of every server given `setup` see. */
function counter() {
  const handled = new Map<number, number>()
  const setup = (app: FastifyInstance) =>
    parleyOf(app).on('connection', (socket) =>
      socket.on('n', (n: number) => handled.set(n, (handled.get(n) ?? 0) + 1)),
    )
  return { handled, setup }
}

describe.each<TransportName>(['websocket', 'sse', 'polling'])('a shutdown mid-stream, on %s', (transport) => {
  // With Fastify's `return503OnClosing` (the default) the plugin answers the closing session's
  // requests itself; without it, its routes serve them until the sessions end.
  it.each([{}, { return503OnClosing: false }])(
    'leaves every event handled exactly once across the closing server and the next (Fastify options %o)',
    async (fastifyOptions) => {
      const { handled, setup } = counter()
      const options = { shutdown: { retryAfter: 0, retrySpread: 0 } }
      const first = await startServer(setup, options, 0, fastifyOptions)
      // Polling at a pace the closing server waits for: its last GET gets the ACK and CLOSE, also
      // when a POST of its goes out meanwhile (answered 204, its events left for the next server).
      const fetch = transport === 'polling' ? pacedFetch(50) : undefined
      const socket = client(first.url, { transports: [transport], ...(fetch ? { fetch } : {}) })
      await next(socket, 'connect', 5000)
      // What the transport met, named if the disconnect is not the shutdown's.
      const failures: string[] = []
      socket.on('transport_error', (name: string, error: ParleyError<string>) =>
        failures.push(`${name}: ${error.code} ${error.message}`),
      )

      let sent = 0
      const stream = setInterval(() => {
        if (sent < EVENTS) socket.emit('n', ++sent)
      }, 5)
      try {
        await until(() => handled.size >= EVENTS / 3, 5000, 'a third of the events at the first server')
        const down = next<[string]>(socket, 'disconnect', 5000)
        await first.app.close()
        expect((await down)[0], `transport errors: ${failures.join('; ')}`).toBe('server shutdown')

        await startServer(setup, {}, first.port)
        await until(() => sent === EVENTS, 8000, 'every event emitted')
        await until(() => handled.size === EVENTS, 8000, 'every event handled')
      } finally {
        clearInterval(stream)
      }
      const twice = [...handled].filter(([, count]) => count > 1).map(([n]) => n)
      expect(twice).toEqual([])
    },
    40_000,
  )
})
