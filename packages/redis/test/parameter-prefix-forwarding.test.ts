// Two nodes on one Redis, each with Parley under the Fastify prefix `/:tenant`, behind a
// round-robin balancer without session affinity: a session's polls, streams, POSTs and WebSocket
// resumes that reach the other node are sent on to the session's node at the URL the client used,
// its tenant segment included, and the session goes on there.

import { connect, type Socket } from '@parley/client'
import type { TransportName } from '@parley/protocol'
import { describe, expect, it, onTestFinished } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { startRoundRobin } from '../../../test/support/round-robin.js'
import { until, within } from '../../server/test/helpers.js'
import { redisSuite } from './nodes.js'
import { type PrefixedNode, prefixedNode, seeEachOther } from './prefixed-node.js'

interface TenantNode extends PrefixedNode {
  /** The name its sockets answer `who` with. */
  node: string
}

describe.skipIf(skipRedisSuites())('nodes with Parley under a prefix with a parameter', () => {
  const suite = redisSuite(() => undefined)

  /** A node under `/:tenant`, on the suite's Redis. */
  async function tenantNode(node: string): Promise<TenantNode> {
    const made = await prefixedNode(suite.redis.url, '/:tenant', {
      routed: true,
      serve: (server) =>
        server.on('connection', (socket) => {
          socket.on('who', (ack: (where: string) => void) => ack(node))
        }),
    })
    return { ...made, node }
  }

  it.each([['polling'], ['sse'], ['websocket']] as [TransportName][])(
    'sends on to the session’s node, at the tenant the client used, what reaches the other (%s)',
    async (transport) => {
      const a = await tenantNode('a')
      const b = await tenantNode('b')
      await seeEachOther(a, b)
      const proxy = await startRoundRobin([a.port, b.port])
      onTestFinished(() => proxy.close())
      const client: Socket = connect(`${proxy.url}/acme/parley`, {
        transports: [transport],
        reconnectionDelay: 50,
        reconnectionDelayMax: 200,
      })
      onTestFinished(() => void client.disconnect())
      await within(
        new Promise<void>((resolve) => client.once('connect', () => resolve())),
        5000,
        'the client to connect',
      )
      const [owner, other] = a.parley.sockets.size === 1 ? [a, b] : [b, a]
      // Round and round the balancer: the session's requests reach both nodes.
      for (let i = 0; i < 6; i++) {
        expect(await within(client.emitWithAck('who' as never), 5000, `answer ${i}`)).toBe(owner.node)
      }
      if (transport === 'websocket') {
        // A drop: the resume's upgrade goes to the other node in its turn, which relays it to
        // the session's node at the client's own path.
        const sid = client.id
        proxy.cut()
        await until(() => client.connected && proxy.upgrades[other === a ? 0 : 1]! > 0, 5000, 'the resume')
        expect(client.id).toBe(sid)
        expect(await within(client.emitWithAck('who' as never), 5000, 'the answer after the resume')).toBe(
          owner.node,
        )
      }
      expect(owner.routedTenants.length).toBeGreaterThan(0)
      expect(new Set(owner.routedTenants)).toEqual(new Set(['acme']))
      expect(other.parley.sockets.size).toBe(0)
    },
    50_000,
  )
})
