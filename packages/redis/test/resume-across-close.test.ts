// The resume of a client whose session its node just handed off, when the balancer sends it back
// to that node while it closes (SSE and polling: a handshake POST). The closing node sends it on
// to a live node, which claims the session, as its routes do while it is open; refused (503)
// instead, the client tried again and again within its quiet time, for as long as the balancer
// sent it there. Its requests after the resume go through the closing node too (see
// get-across-close.test.ts), until the end of the drain ends them with CLOSE 'server handoff'.
// The drain is held open by a session of its own that nobody claims (a bare client that does not
// resume), whose goodbye ends it. Both ways Fastify may close: answering every request itself
// (its default `return503OnClosing`), or leaving them to the routes until Parley has closed.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until } from '../../server/test/helpers.js'
import { acrossClose, bothWays, endDrain, httpCases } from './drain-end.js'
import { balancedSuite } from './e2e-suite.js'

describe.skipIf(skipRedisSuites())(
  'a resume that reaches the closing node that handed its session off',
  () => {
    const suite = balancedSuite()

    it.each(httpCases)(
      'is sent on to a live node, which claims the session (%s, return503OnClosing: %s)',
      async (transport, return503OnClosing) => {
        // Everything goes to a, the resume included.
        const setup = await acrossClose(suite, {
          transport,
          return503OnClosing,
          home: 'a',
        })
        const { a, b, balancer, heldOnB, c, got, lost, held } = setup
        const id = c.id

        const draining = a.started.app.close()
        await until(() => b.restored.length === 1 && c.connected, 8000, 'claimed by b through a')
        expect(balancer.forwarded[1]).toBe(0)
        await bothWays(setup, b.restored[0]!, 1, 1, 3000, 'both ways through a')

        // a's drain ends: what it relays ends with CLOSE 'server handoff', and the client resumes on b.
        await endDrain({ a, balancer, held, draining, heldOnB, lost })
        await bothWays(setup, b.restored[0]!, 2, 2, 5000, 'the next messages, on b')

        expect(got).toEqual([1, 2])
        expect(b.received).toEqual([1, 2])
        expect(a.received).toEqual([])
        expect(lost).toEqual([])
        expect(b.restored).toHaveLength(1)
        expect(c.id).toBe(id)
        expect(c.recovered).toBe(true)
      },
    )
  },
)
