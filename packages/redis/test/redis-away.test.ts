// A node that cannot reach Redis when a client resumes there, with real servers and the real
// client: it cannot tell where the session lives, so it tells the client to try again rather
// than give it a new session; once Redis answers, the next try finds the session on its node,
// recovered, nothing lost either way.
import { connect } from '@parley/client'
import { ErrorCode, type TransportName } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { startTcpProxy, type TcpProxy } from '../../../test/support/tcp-proxy.js'
import { sleep, until } from '../../server/test/helpers.js'
import {
  balancedSuite,
  expectEachOnceInSenderOrder,
  startTrafficNode,
  type TrafficNode,
  untilEveryBroadcast,
} from './e2e-suite.js'

describe.skipIf(skipRedisSuites())('a resume at a node that cannot reach Redis', () => {
  let link: TcpProxy | undefined
  const { suite, balance } = balancedSuite<TrafficNode>({
    afterNodes: async () => {
      await link?.close()
      link = undefined
    },
  })
  const { nodes, clients } = suite

  it.each<TransportName>(['websocket', 'polling'])(
    'tells the client to try again until Redis answers, then resumes its session, nothing lost (%s)',
    async (transport) => {
      // b reaches Redis through a link that can go down.
      link = await startTcpProxy(suite.redis.port)
      const a = await startTrafficNode(suite.redis.url, nodes)
      const b = await startTrafficNode(`redis://127.0.0.1:${new URL(link.url).port}`, nodes)
      const balancer = await balance([a, b])
      const c = connect(`${balancer.url}/parley`, {
        transports: [transport],
        reconnectionDelay: 100,
        reconnectionDelayMax: 300,
      })
      clients.push(c)
      const refusals: string[] = []
      c.on('connect_error', (err: { code: string }) => refusals.push(err.code))
      const got: number[] = []
      c.on('room', (n: number) => got.push(n))
      balancer.avoid.add(1)
      await until(() => c.connected, 3000, 'connect to a')
      const id = c.id!
      // From now on every request goes to b.
      balancer.avoid.clear()
      balancer.avoid.add(0)

      link.offline = true
      await until(() => !b.redis.isReady, 5000, 'b cut off from Redis')
      let up = 0
      let down = 0
      // The numbers each node broadcast, a's first: b's once the session is there.
      const sentBy = new Map([a, b].map((node) => [node, [] as number[]]))
      const traffic = setInterval(() => {
        c.emit('up', ++up)
        const from = b.restored.length > 0 ? b : a
        from.started.app.parley.to('room').emit('room', ++down)
        sentBy.get(from)!.push(down)
      }, 10)
      try {
        // The client's connection drops; it resumes at b, which cannot look the session up.
        balancer.cut()
        await until(() => refusals.includes(ErrorCode.SERVER_SHUTTING_DOWN), 5000, 'told to try again')
        await sleep(300)
        expect(c.connected).toBe(false)
        expect(b.connections).toEqual([])

        link.offline = false
        await until(() => c.connected, 10_000, 'resumed once Redis answers b')
        await sleep(100)
      } finally {
        clearInterval(traffic)
      }
      // A failure names the numbers lost and the node that sent them.
      await untilEveryBroadcast(
        got,
        new Map([
          ['a', sentBy.get(a)!],
          ['b', sentBy.get(b)!],
        ]),
        5000,
      )
      await until(() => a.received.length + b.received.length >= up, 5000, 'every up')
      await sleep(100)

      const numbers = (n: number) => Array.from({ length: n }, (_, i) => i + 1)
      expect(c.recovered).toBe(true)
      expect(c.id).toBe(id)
      expect(a.connections).toHaveLength(1)
      expect(b.connections).toEqual([])
      expect([...a.received, ...b.received]).toEqual(numbers(up))
      expectEachOnceInSenderOrder(got, [...sentBy.values()])
      expect(b.warnings).toContain(
        '@parley/redis: a resume of a session this node does not hold could not be looked up in Redis; the client tries again',
      )
    },
    40_000,
  )
})
