// A drain whose node reads the channel too slowly to seal before the claimer stops waiting, real
// servers and the real client: a third node's room broadcasts that the draining node read after
// its snapshot reach the client once each, in order, from the claimer's window (see
// src/read-window.ts), numbered after the tail and before what the claimer sends live.
import { connect } from '@parley/client'
import { createClient, type RedisClientType } from 'redis'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { startTcpProxy } from '../../../test/support/tcp-proxy.js'
import { until } from '../../server/test/helpers.js'
import type { RedisClient } from '../src/options.js'
import { balancedSuite, startTrafficNode, type TrafficNode } from './e2e-suite.js'
import { sealWaitsByHand } from './handoff-support.js'

/** `client` as the adapter gets it, its subscriber made on `subscriberUrl` instead. */
function subscribingVia(client: RedisClientType, subscriberUrl: string): RedisClient {
  return {
    get isOpen() {
      return client.isOpen
    },
    get isReady() {
      return client.isReady
    },
    sendCommand: (args) => client.sendCommand(args),
    duplicate: () => {
      const subscriber = createClient({ url: subscriberUrl })
      subscriber.on('error', () => {})
      return subscriber
    },
    options: client.options,
    on: (event, listener) => client.on(event, listener),
    off: (event, listener) => client.off(event, listener),
  }
}

describe.skipIf(skipRedisSuites())(
  'a drain that did not seal within the wait, a third node broadcasting',
  () => {
    const { suite, balance } = balancedSuite<TrafficNode>()
    const { nodes, clients } = suite

    it('gives the client every broadcast the draining node read too late, once, in order', async () => {
      const aProxy = await startTcpProxy(suite.redis.port)
      const waits = sealWaitsByHand()
      const releases: (() => void)[] = []
      try {
        const a = await startTrafficNode(suite.redis.url, nodes, {
          view: (client) => subscribingVia(client, `redis://127.0.0.1:${new URL(aProxy.url).port}`),
        })
        const b = await startTrafficNode(suite.redis.url, nodes)
        const c = await startTrafficNode(suite.redis.url, nodes, { seen: true })
        const balancer = await balance([a, b])
        balancer.avoid.add(1)
        const client = connect(`${balancer.url}/parley`, {
          transports: ['websocket'],
          reconnectionDelay: 100,
        })
        clients.push(client)
        const got: number[] = []
        client.on('n', (n: number) => got.push(n))
        await until(() => client.connected && a.connections.length === 1, 5000, 'connect to a')

        // a reads nothing from here on: c's broadcasts reach b's subscriber, not a's.
        releases.push(aProxy.holdDownstream())
        for (let n = 1; n <= 6; n++) c.started.app.parley.to('room').emit('n', n)
        // a drains: the client resumes at b, whose wait for a's seal runs out.
        balancer.avoid.clear()
        balancer.avoid.add(0)
        const drained = a.started.app.close()
        await until(() => waits.began === 1, 10_000, "b's claim marker published")
        waits.runOut()
        await until(() => b.restored.length === 1 && client.connected, 10_000, 'the resume at b')
        // a reads the broadcasts and the marker now: its appends, past b's read, are refused.
        for (const release of releases.splice(0)) release()
        await drained
        c.started.app.parley.to('room').emit('n', 7)
        await until(() => got.includes(7), 5000, '7 at the client')
        expect(got).toEqual([1, 2, 3, 4, 5, 6, 7])
        expect(client.recovered).toBe(true)
      } finally {
        for (const release of releases) release()
        waits.stop()
        await aProxy.close()
      }
    }, 35_000)
  },
)
