// A claim whose connection to Redis drops after Redis ran it, with real servers and the real
// client: the node that claimed cannot tell whether it won, so it takes the claim back (once its
// connection is back, before anything else) and tells the client to try again; the next try
// takes the session over, recovered, nothing lost either way.
import { connect } from '@parley/client'
import { redisAdapter } from '@parley/redis'
import type { ServerSocket } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { type RoundRobinProxy, startRoundRobin } from '../../../test/support/round-robin.js'
import { startTcpProxy, type TcpProxy } from '../../../test/support/tcp-proxy.js'
import { type Started, sleep, startServer, until } from '../../server/test/helpers.js'
import { connectedClient, endToEndSuite, type SuiteNode } from './e2e-suite.js'

interface Node extends SuiteNode {
  connections: ServerSocket[]
  restored: ServerSocket[]
  /** Numbered `up` messages received on this node, in order. */
  received: number[]
  warnings: string[]
}

describe.skipIf(skipRedisSuites())('a claim whose connection to Redis drops', () => {
  let balancer: RoundRobinProxy | undefined
  let cutter: TcpProxy | undefined
  const suite = endToEndSuite<Node>({
    beforeNodes: async () => {
      await balancer?.close()
      balancer = undefined
    },
    afterNodes: async () => {
      await cutter?.close()
      cutter = undefined
    },
  })
  const { nodes, clients } = suite

  async function startNode(url: string): Promise<Node> {
    const client = await connectedClient(url)
    const node: Node = {
      started: undefined as unknown as Started,
      redis: client,
      connections: [],
      restored: [],
      received: [],
      warnings: [],
    }
    const setup = (socket: ServerSocket) => socket.on('up', (n: number) => node.received.push(n))
    node.started = await startServer(
      {
        adapter: redisAdapter({
          client,
          heartbeatInterval: 300,
          log: { warn: (_details, message) => node.warnings.push(message) },
        }),
        handoff: { timeout: 7000, retrySpread: 0 },
      },
      (app) => {
        app.parley.on('connection', (socket) => {
          node.connections.push(socket)
          void socket.join('room')
          setup(socket)
        })
        app.parley.on('restored', (socket) => {
          node.restored.push(socket)
          setup(socket)
        })
      },
      { return503OnClosing: false },
    )
    nodes.push(node)
    return node
  }

  it('tells the client to try again, and its next try takes the session over, recovered, nothing lost', async () => {
    // b reaches Redis through a proxy that can cut its connection at a given answer.
    cutter = await startTcpProxy(suite.redis.port)
    const a = await startNode(suite.redis.url)
    const b = await startNode(`redis://127.0.0.1:${new URL(cutter.url).port}`)
    balancer = await startRoundRobin([a, b].map((n) => Number(new URL(n.started.base).port)))
    const c = connect(`${balancer.url}/parley`, { transports: ['websocket'], autoConnect: false })
    clients.push(c)
    const events: string[] = []
    c.on('disconnect', (reason: string) => events.push(`disconnect ${reason}`))
    const got: number[] = []
    c.on('room', (n: number) => got.push(n))
    balancer.avoid.add(1)
    c.connect()
    await until(() => c.connected, 3000, 'connect to a')
    balancer.avoid.clear()
    const id = c.id!

    let up = 0
    let down = 0
    const traffic = setInterval(() => {
      c.emit('up', ++up)
      // From a, then (once the session is there) from b: every one reaches the client once.
      const from = b.restored.length > 0 ? b : a
      if (!from.started.app.parley.closing) from.started.app.parley.to('room').emit('room', ++down)
    }, 10)
    await sleep(100)
    // b's claim runs in Redis, and its answer (the snapshot names the socket) is lost.
    const cut = cutter.cutAt(`"id":"${id}"`)
    balancer.avoid.add(0)
    const draining = a.started.app.close()
    await cut
    await until(() => b.restored.length === 1, 8000, 'restored on b')
    await draining
    await sleep(100)
    clearInterval(traffic)
    await until(() => c.connected && got.length >= down, 5000, 'every broadcast')
    await until(() => a.received.length + b.received.length >= up, 5000, 'every up')
    await sleep(100)

    const numbers = (n: number) => Array.from({ length: n }, (_, i) => i + 1)
    expect(c.recovered).toBe(true)
    expect(c.id).toBe(id)
    expect(b.connections).toEqual([])
    expect(b.restored[0]!.id).toBe(id)
    expect([...a.received, ...b.received]).toEqual(numbers(up))
    expect(got).toEqual(numbers(down))
    expect(events).toEqual([])
    expect(b.warnings).toContain(
      '@parley/redis: a claim got no answer from Redis; it is taken back once Redis answers, and the client tries again',
    )
  })
})
