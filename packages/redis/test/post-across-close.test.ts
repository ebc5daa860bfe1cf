// A POST that reaches a closing node for a session that node handed off and another node has
// taken over since: the closing node sends it on to that node, as its routes do for a session
// held elsewhere while it is open. Refused (503) instead, it failed the client's transport, and
// the client resumed a second time for nothing. The drain is held open by a second session that
// nobody claims (a bare client that does not resume), so that the POST comes while the node
// still closes; its goodbye ends the drain at the end of the test. Both ways Fastify may close:
// answering every request itself (its default `return503OnClosing`), or leaving them to the
// routes until Parley has closed.
import { PacketType } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { acrossClose } from './drain-end.js'
import { balancedSuite } from './e2e-suite.js'

describe.skipIf(skipRedisSuites())('a POST that crosses its old node’s close', () => {
  const suite = balancedSuite()

  it.each([true, false])(
    'goes on to the node that took the session over (return503OnClosing: %s)',
    async (return503OnClosing) => {
      const { a, b, balancer, c, lost, held } = await acrossClose(suite, {
        transport: 'sse',
        return503OnClosing,
        home: 'a',
      })
      const id = c.id

      // a drains: the client resumes on b.
      balancer.avoid.clear()
      balancer.avoid.add(0)
      const draining = a.started.app.close()
      await until(() => b.restored.length === 1 && c.connected, 8000, 'resumed on b')
      const onA = a.connections.find((socket) => socket.id === id)!
      await until(() => onA.session.state === 'closed', 3000, 'taken from a')
      expect(lost).toEqual([])

      // The next POST reaches a, which sends it on to b.
      balancer.avoid.clear()
      balancer.avoid.add(1)
      const toA = balancer.forwarded[0]!
      c.emit('up', 1)
      await until(() => balancer.forwarded[0]! > toA, 3000, 'the POST to a')
      balancer.avoid.clear()
      balancer.avoid.add(0)
      await until(() => b.received.length === 1, 3000, 'the event, on b')
      c.emit('up', 2)
      await until(() => b.received.length === 2, 3000, 'the next event, on b')

      expect(b.received).toEqual([1, 2])
      expect(a.received).toEqual([])
      expect(lost).toEqual([])
      expect(b.restored).toHaveLength(1)
      expect(c.id).toBe(id)
      await held.send({ type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' })
      await within(draining, 5000, 'the drain over once the held session said goodbye')
    },
  )
})
