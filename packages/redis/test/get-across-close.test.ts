// GETs (an event stream, a poll) that reach a node while it closes, for a session another node
// holds: one this node handed off and another node has taken over since, or one that has always
// lived on the other node (a relayed client, the balancer sending its requests here). While its
// forwarder is open the closing node sends them on, as its routes do while it is open; refused
// (503), the GET failed the client's transport, and the client resumed at once, without the
// quiet time a CLOSE 'server handoff' gives it (a balancer that retries on 503 hid that; this one
// does not). When the forwarder closes at the end of the close, what it still relays ends with
// that CLOSE, and the client resumes where its session is. The drain of the closing node is held
// open by a session of its own that nobody claims (a bare client that does not resume), whose
// goodbye ends it. Both ways Fastify may close: answering every request itself (its default
// `return503OnClosing`), or leaving them to the routes until Parley has closed.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until } from '../../server/test/helpers.js'
import { acrossClose, bothWays, endDrain, httpCases } from './drain-end.js'
import { balancedSuite } from './e2e-suite.js'

describe.skipIf(skipRedisSuites())('a GET that reaches a closing node for a session held elsewhere', () => {
  const suite = balancedSuite()

  it.each(httpCases)(
    'of a session taken over since it was handed off (%s) goes on to the node that took it (return503OnClosing: %s)',
    async (transport, return503OnClosing) => {
      const setup = await acrossClose(suite, {
        transport,
        return503OnClosing,
        home: 'a',
      })
      const { a, b, balancer, heldOnB, c, got, lost, held } = setup
      const id = c.id

      // a drains: the client resumes on b, and the GET that follows its resume (its stream, or
      // its first poll) goes to a.
      b.started.app.parley.on('restored', () => {
        balancer.avoid.clear()
        balancer.avoid.add(1)
      })
      balancer.avoid.clear()
      balancer.avoid.add(0)
      const toA = balancer.forwarded[0]!
      const draining = a.started.app.close()
      await until(() => b.restored.length === 1, 8000, 'taken over by b')
      await until(() => balancer.forwarded[0]! > toA, 3000, 'the GET to a')
      // b's messages reach the client through a.
      b.restored[0]!.emit('down', 1)
      await until(() => got.length === 1, 3000, 'a message of b through a')
      c.emit('up', 1)
      await until(() => b.received.length === 1, 3000, 'the event, on b')

      // a's drain ends: what it relays ends with CLOSE 'server handoff', and the client resumes on b.
      await endDrain({ a, balancer, held, draining, heldOnB, lost })
      await bothWays(setup, b.restored[0]!, 2, 2, 5000, 'the next messages, on b')

      expect(got).toEqual([1, 2])
      expect(b.received).toEqual([1, 2])
      expect(a.received).toEqual([])
      expect(lost).toEqual([])
      expect(b.restored).toHaveLength(1)
      expect(c.id).toBe(id)
    },
  )

  it.each([true, false])(
    "of a relayed client (polling), and its POST, go on to the client's node (return503OnClosing: %s)",
    async (return503OnClosing) => {
      // The session lives on b.
      const setup = await acrossClose(suite, {
        transport: 'polling',
        return503OnClosing,
        home: 'b',
      })
      const { a, b, balancer, heldOnB, c, got, lost, held } = setup
      const socket = b.connections[0]!

      // a begins to close; from now on the balancer sends the client's requests to a.
      const draining = a.started.app.close()
      await until(() => a.started.app.parley.closing, 3000, 'a closing')
      balancer.avoid.clear()
      balancer.avoid.add(1)
      const toA = balancer.forwarded[0]!
      // Answers the poll b holds; the next one goes to a.
      socket.emit('down', 1)
      await until(() => got.length === 1, 3000, 'the first message')
      await until(() => balancer.forwarded[0]! > toA, 3000, 'a poll to a')
      await bothWays(setup, socket, 2, 1, 3000, 'both ways through a')

      // a's drain ends: the poll it relays ends with CLOSE 'server handoff'; the client resumes on b.
      await endDrain({ a, balancer, held, draining, heldOnB, lost })
      await bothWays(setup, socket, 3, 2, 5000, 'the next messages, on b')

      expect(got).toEqual([1, 2, 3])
      expect(b.received).toEqual([1, 2])
      expect(a.received).toEqual([])
      expect(lost).toEqual([])
      expect(b.connections).toHaveLength(1)
      expect(c.id).toBe(socket.id)
    },
  )
})
