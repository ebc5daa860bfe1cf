// WebSocket resumes that reach a node while it closes: of a session that node just handed off, or
// of one another node has always held (a relayed client, the balancer sending it there). The
// closing node relays them, as its route does while the node drains: the first to a live node,
// which claims the session, the second to the session's node. Refused (Fastify's 503 while it
// closes, its default `return503OnClosing`), the client tried again and again for as long as the
// balancer sent it there, and the drain waited for a claim that could not come through that node.
// When the drain is over, the relays end with CLOSE 'server handoff', as the streams and polls the
// node relays do (get-across-close.test.ts), and the client resumes where its session is. The
// drain is held open by a session of its own that nobody claims (a bare client that does not
// resume), whose goodbye ends it. Both ways Fastify may close: answering every request itself, or
// leaving them to the routes until Parley has closed.
import { PacketType } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { handoffSniffer } from '../../../test/cluster/sniff.js'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { type AcrossClose, acrossClose, bothWays } from './drain-end.js'
import { balancedSuite } from './e2e-suite.js'

describe.skipIf(skipRedisSuites())('a WebSocket resume that reaches a closing node', () => {
  const suite = balancedSuite()

  /** `acrossClose` with a WebSocket client, and the handoff CLOSEs it is told. */
  async function watched(
    return503OnClosing: boolean,
    home: 'a' | 'b',
  ): Promise<AcrossClose & { handoffs: { drained: number; relayed: number } }> {
    const handoffs = { drained: 0, relayed: 0 }
    const options = handoffSniffer((relayed) => {
      if (relayed) handoffs.relayed++
      else handoffs.drained++
    })
    const setup = await acrossClose(suite, { transport: 'websocket', return503OnClosing, home, options })
    return { ...setup, handoffs }
  }

  it.each([true, false])(
    'of the session it handed off is relayed to a live node, which claims it (return503OnClosing: %s)',
    async (return503OnClosing) => {
      // Everything goes to a, the resume included.
      const setup = await watched(return503OnClosing, 'a')
      const { a, b, balancer, c, got, lost, held, handoffs } = setup
      const id = c.id

      const draining = a.started.app.close()
      await until(() => b.restored.length === 1 && c.connected, 8000, 'claimed by b through a')
      expect(balancer.upgrades[1]).toBe(0)
      await bothWays(setup, b.restored[0]!, 1, 1, 3000, 'both ways through a')
      expect(lost).toEqual([])
      expect(handoffs).toEqual({ drained: 1, relayed: 0 })
      expect(a.started.app.parley.closed).toBe(false)

      // a's drain ends: the WebSocket it relays ends with CLOSE 'server handoff', and the client
      // resumes on b.
      balancer.avoid.clear()
      balancer.avoid.add(0)
      await held.send({ type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' })
      await within(draining, 5000, 'the drain over once the held session said goodbye')
      await until(() => handoffs.relayed === 1, 3000, "the relay's CLOSE 'server handoff'")
      await bothWays(setup, b.restored[0]!, 2, 2, 5000, 'the next messages, on b')

      expect(got).toEqual([1, 2])
      expect(b.received).toEqual([1, 2])
      expect(a.received).toEqual([])
      expect(lost).toEqual([])
      expect(handoffs).toEqual({ drained: 1, relayed: 1 })
      expect(b.restored).toHaveLength(1)
      expect(c.id).toBe(id)
      expect(c.recovered).toBe(true)
    },
  )

  it.each([true, false])(
    'of a session another node holds is relayed to that node (return503OnClosing: %s)',
    async (return503OnClosing) => {
      // The session lives on b.
      const setup = await watched(return503OnClosing, 'b')
      const { a, b, balancer, c, got, lost, held, handoffs } = setup
      const socket = b.connections[0]!

      // a begins to close; from now on the balancer sends the client to a, and its WebSocket is cut.
      const draining = a.started.app.close()
      await until(() => a.started.app.parley.closing, 3000, 'a closing')
      balancer.avoid.clear()
      balancer.avoid.add(1)
      const toA = balancer.upgrades[0]!
      const cut = lost.length
      balancer.cut()
      await until(() => balancer.upgrades[0]! > toA && c.connected, 8000, 'resumed through a')
      await bothWays(setup, socket, 1, 1, 3000, 'both ways through a')
      // Only the cut failed a transport: the resume through a did not.
      expect(lost.slice(cut)).toEqual(['PARLEY_TRANSPORT_ERROR'])
      expect(a.started.app.parley.closed).toBe(false)

      // a's drain ends: the WebSocket it relays ends with CLOSE 'server handoff', and the client
      // resumes on b.
      balancer.avoid.clear()
      balancer.avoid.add(0)
      const relayedAt = lost.length
      await held.send({ type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' })
      await within(draining, 5000, 'the drain over once the held session said goodbye')
      await until(() => handoffs.relayed === 1, 3000, "the relay's CLOSE 'server handoff'")
      await bothWays(setup, socket, 2, 2, 5000, 'the next messages, on b')

      expect(got).toEqual([1, 2])
      expect(b.received).toEqual([1, 2])
      expect(a.received).toEqual([])
      expect(lost.slice(relayedAt)).toEqual([])
      expect(handoffs).toEqual({ drained: 0, relayed: 1 })
      expect(b.connections).toHaveLength(1)
      expect(b.restored).toHaveLength(0)
      expect(c.id).toBe(socket.id)
    },
    25_000,
  )
})
