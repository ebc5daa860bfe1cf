// A resume on the node that holds its session, whose handshake middleware outlasts
// handshakeTimeout (a database call without a timeout of its own): the client is answered
// PARLEY_HANDSHAKE_TIMEOUT, which is no verdict on it, and the session stays as it was, awaiting
// its client. The real client's next try resumes it: same id, `recovered: true`, every broadcast
// sent meanwhile once and in order, its own emits once each.
import { connect, type Socket } from '@parley/client'
import type { TransportName } from '@parley/protocol'
import type { ServerSocket } from '@parley/server'
import { describe, expect, it, onTestFinished } from 'vitest'
import { startRoundRobin } from '../../../test/support/round-robin.js'
import { closedAfterEach } from './closed-after-each.js'
import { gate } from './gate.js'
import { startServer, until } from './helpers.js'
import { holdingOnce } from './holding-once.js'

/** The server's handshakeTimeout here: well under the client's connectTimeout. */
const BOUND = 500

const opened = closedAfterEach()

describe.each(['websocket', 'sse', 'polling'] as const)(
  'a resume whose middleware outlasts handshakeTimeout, over %s',
  (transport: TransportName) => {
    it("keeps its session for the client's next try, which resumes it with every broadcast once", async () => {
      const cue = gate()
      onTestFinished(() => cue.open())
      let armed = false
      const sockets: ServerSocket[] = []
      const received: number[] = []
      opened.started = await startServer({ handshakeTimeout: BOUND }, (app) => {
        app.parley.use(holdingOnce(cue, () => armed))
        app.parley.on('connection', (socket) => {
          sockets.push(socket)
          void socket.join('room')
          socket.on('up', (n: number) => received.push(n))
        })
      })
      const { app, base } = opened.started
      // A link of its own between client and server, to cut.
      const link = await startRoundRobin([Number(new URL(base).port)])
      onTestFinished(() => link.close())
      const client: Socket = connect(`${link.url}/parley`, {
        transports: [transport],
        reconnectionDelay: 100,
        reconnectionDelayMax: 300,
      })
      opened.parleyClients.push(client)
      const got: number[] = []
      client.on('room', (n: number) => got.push(n))
      const lost: string[] = []
      client.on('disconnect', (reason: string) => lost.push(reason))
      // The answer at the bound: a failed attempt, which the client tries again.
      const failed: string[] = []
      client.on('connect_error', (err) => failed.push(err.code))
      await until(() => client.connected, 3000, 'connected')
      const id = client.id
      let n = 0
      const broadcast = () => app.parley.to('room').emit('room', ++n)
      broadcast()
      client.emit('up', 1)
      await until(() => got.length === 1 && received.length === 1, 3000, 'the first broadcast and emit')

      // The link drops; the client's resume meets the held middleware, answered at its bound.
      // Cut again until the client has seen it: over polling the cut can fall between a poll's
      // answer and the next poll, which then goes out on a new connection as if nothing happened.
      armed = true
      await until(
        () => {
          if (client.connected && !cue.reached()) link.cut()
          return !client.connected || cue.reached()
        },
        5000,
        'the client to see the link cut',
      )
      await until(() => cue.reached(), 5000, 'the middleware to hold the resume')
      broadcast()
      client.emit('up', 2)
      const tries = () => link.forwarded.reduce((sum, k) => sum + k, 0)
      const before = tries()
      await until(() => tries() > before, 5000, "the client's next try, after the answer at handshakeTimeout")
      expect(failed).toContain('PARLEY_HANDSHAKE_TIMEOUT')
      broadcast()
      // Resumed, or ended for good: its session's CLOSE says so.
      const ended = () => lost.filter((reason) => reason !== 'transport close')
      await until(
        () => (client.connected && got.length >= 3) || ended().length > 0,
        5000,
        'the client resumed',
      )
      expect(ended()).toEqual([])
      expect(client.id).toBe(id)
      expect(client.recovered).toBe(true)
      broadcast()
      client.emit('up', 3)
      await until(() => got.length >= 4 && received.includes(3), 3000, 'the last broadcast and emit')
      expect(got).toEqual([1, 2, 3, 4])
      expect(received).toEqual([1, 2, 3])
      expect(sockets.map((socket) => socket.id)).toEqual([id])
    })
  },
)
