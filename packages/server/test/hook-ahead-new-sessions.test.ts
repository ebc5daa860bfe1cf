// While a preClose hook the application added ahead of Parley's holds the close, a new session is
// refused on every transport alike, with the code its client tries again on: over SSE and
// polling the handshake's 503 PARLEY_SERVER_SHUTTING_DOWN, over WebSocket the HELLO's ERROR of
// the same code, as while the node drains. A session opened then would only end, or be handed
// off, once the close reaches Parley. `whenClosing()` still waits for that moment, and a restart
// in place hands the path to its successor only then: the refused clients connect there.

import { connect, type Socket } from '@parley/client'
import { describe, expect, it, onTestFinished } from 'vitest'
import { gate } from './gate.js'
import { until, within } from './helpers.js'
import { restartableServer, TRANSPORTS } from './restartable-server.js'

/** How a client's first attempt ended: connected, or refused with the error's code and message. */
type FirstOutcome = 'connected' | string

describe.each([
  ['Fastify refusing requests while it closes', true, 'the instance after it', false],
  ['Fastify refusing requests while it closes', true, 'its successor', true],
  ['return503OnClosing: false', false, 'the instance after it', false],
  ['return503OnClosing: false', false, 'its successor', true],
] as const)(
  "a preClose hook of the application's ahead of Parley's, held (%s)",
  (_name, return503OnClosing, then, successor) => {
    it(`refuses a new session on every transport alike, which then connects to ${then}`, async () => {
      const shared = await restartableServer(return503OnClosing)
      const hold = gate()
      const old = await shared.make('old', undefined, undefined, {}, (app) =>
        app.addHook('preClose', () => hold.pass()),
      )
      shared.serve(old)
      const waiting = successor
        ? await shared.make('next', undefined, undefined, { successor: true })
        : undefined
      const closing = old.close()
      onTestFinished(async () => {
        hold.open()
        await closing
      })
      await until(() => hold.reached(), 5000, "the close to reach the application's hook")

      const clients: Socket[] = []
      const outcomes = new Map<string, FirstOutcome>()
      for (const transport of TRANSPORTS) {
        const client = connect(`http://127.0.0.1:${shared.port}/a`, {
          transports: [transport],
          // The refusal is what ends the first attempt, not the client's own deadline: at the
          // default 3000 ms a WebSocket waits 1000 ms for its upgrade, which a loaded machine
          // can use up before the server's answer (a third of this is 3333 ms).
          connectTimeout: 10_000,
          reconnectionDelay: 50,
          reconnectionDelayMax: 200,
        })
        shared.clients.push(client)
        clients.push(client)
        const first = (outcome: FirstOutcome) => {
          if (!outcomes.has(transport)) outcomes.set(transport, outcome)
        }
        client.once('connect', () => first('connected'))
        // Its code and what it says: Parley's refusal, not a bare 503 that a client reads as the same
        // code, but a page on another origin cannot read at all (no CORS headers).
        client.once('connect_error', (error, willRetry) =>
          first(willRetry ? `${error.code}: ${error.message}` : `given up: ${error.code}`),
        )
      }
      await until(() => outcomes.size === TRANSPORTS.length, 10_000, 'every client to end its first attempt')
      const refused = 'PARLEY_SERVER_SHUTTING_DOWN: the server is shutting down'
      expect(Object.fromEntries(outcomes)).toEqual({ websocket: refused, sse: refused, polling: refused })
      expect(old.parley.sockets.size).toBe(0)
      // Parley's own part of the close waits for the hook: the path is still the old one's.
      expect(old.parley.closing).toBe(false)

      hold.open()
      await within(old.parley.whenClosing(), 5000, 'whenClosing() once the hook is over')
      let next = waiting
      if (!next) {
        await within(closing, 5000, 'the close to end')
        next = await shared.make('next')
      }
      shared.serve(next)
      for (const [index, client] of clients.entries()) {
        await until(() => client.connected, 5000, `the ${TRANSPORTS[index]} client to connect`)
        expect(await within(client.emitWithAck('where' as never), 5000, 'the answer to where')).toBe('next')
      }
      expect(next.parley.sockets.size).toBe(TRANSPORTS.length)
    }, 60_000)
  },
)
