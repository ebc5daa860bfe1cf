// A WebSocket resume at a node whose commands reach Redis while its subscriber does not (yet):
// node-redis reconnects each connection on its own backoff, so after an outage the subscriber may
// come back a second or two after the commands. Such a node hears neither its claim marker nor
// the old node's seal, nor the broadcasts after the cut: a session it took over then would miss
// every broadcast of the old node's between the marker and the subscriber's return. With real
// servers, the real client and a real Redis.
import { connect } from '@parley/client'
import type { RedisClient } from '@parley/redis'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { startTcpProxy, type TcpProxy } from '../../../test/support/tcp-proxy.js'
import { until } from '../../server/test/helpers.js'
import {
  balancedSuite,
  lostBroadcasts,
  startTrafficNode,
  type TrafficNode,
  untilEveryBroadcast,
} from './e2e-suite.js'
import type { RedisClientType } from './nodes.js'

/** `client` as the adapter gets it, its subscriber (`duplicate()`) connected to `url` instead. */
function subscriberAt(client: RedisClientType, url: string): RedisClient {
  return {
    get isOpen() {
      return client.isOpen
    },
    get isReady() {
      return client.isReady
    },
    options: client.options,
    sendCommand: (args) => client.sendCommand(args),
    duplicate: () => client.duplicate({ url }),
    on: (event, listener) => client.on(event, listener),
    off: (event, listener) => client.off(event, listener),
  }
}

describe.skipIf(skipRedisSuites())('a WebSocket resume at a node whose subscriber is away', () => {
  let subscriberLink: TcpProxy | undefined
  const { suite, balance } = balancedSuite<TrafficNode>({
    afterNodes: async () => {
      await subscriberLink?.close()
      subscriberLink = undefined
    },
  })
  const { nodes, clients } = suite

  it('loses none of the broadcasts its old node sends meanwhile', async () => {
    // b's commands reach Redis directly, its subscriber through a link that can go down.
    const link = await startTcpProxy(suite.redis.port)
    subscriberLink = link
    const a = await startTrafficNode(suite.redis.url, nodes)
    const b = await startTrafficNode(suite.redis.url, nodes, {
      view: (client) => subscriberAt(client, `redis://127.0.0.1:${new URL(link.url).port}`),
      seen: true,
    })
    const balancer = await balance([a, b])
    const c = connect(`${balancer.url}/parley`, {
      transports: ['websocket'],
      reconnectionDelay: 100,
      reconnectionDelayMax: 300,
    })
    clients.push(c)
    const got: number[] = []
    c.on('room', (n: number) => got.push(n))
    balancer.avoid.add(1)
    await until(() => c.connected && a.connections.length === 1, 3000, 'connected to a')
    const id = c.id
    // From now on every request goes to b.
    balancer.avoid.clear()
    balancer.avoid.add(0)

    link.offline = true
    const deaf = (line: string) => line.includes('the subscriber connection to') && line.includes('failed')
    await until(() => b.warnings.some(deaf), 5000, "b's subscriber cut off")
    // Only a broadcasts: the session's room is on a, or on b once taken over there, and reaches
    // b's socket through Redis either way.
    const sent: number[] = []
    const traffic = setInterval(() => {
      sent.push(sent.length + 1)
      a.started.app.parley.to('room').emit('room', sent.length)
    }, 10)
    try {
      // The client's connection drops; it resumes at b, whose subscriber is away.
      balancer.cut()
      await until(() => !c.connected, 3000, 'the client cut off')
      await until(() => c.connected, 10_000, 'resumed through b')
      // a goes on broadcasting while b is still deaf, then b hears again.
      const then = sent.length
      await until(() => sent.length >= then + 30, 5000, 'broadcasts while b cannot hear them')
      link.offline = false
      await until(
        () => b.warnings.some((line) => line.includes('is up again')),
        10_000,
        "b's subscriber back",
      )
      const back = sent.length
      await until(() => sent.length >= back + 10, 5000, 'broadcasts once b hears again')
    } finally {
      clearInterval(traffic)
    }
    await untilEveryBroadcast(got, new Map([['a', sent]]), 5000)
    expect(c.id).toBe(id)
    expect(c.recovered).toBe(true)
    expect(got, lostBroadcasts(got, new Map([['a', sent]]))).toEqual(sent)
  }, 40_000)
})
