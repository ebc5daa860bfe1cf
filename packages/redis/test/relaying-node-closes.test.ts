// A node that closes while it relays a stream, a held poll or a WebSocket of a session that lives
// on another node (no sticky sessions: the balancer sent the client's requests there). The
// session is alive on its own node, so the client is told what a drained session's client is
// told, CLOSE 'server handoff': it resumes elsewhere and keeps quiet while the first tries
// fail (the balancer still sends them to the closing node). Its application hears no
// `disconnect`, and nothing sent either way meanwhile is lost or repeated. Two Parley nodes on
// one real Redis behind a round-robin balancer: `a` holds the session (without handoff, so that
// a WebSocket resume at `b` is relayed rather than moved), `b` relays.
import { connect, type Socket } from '@parley/client'
import type { TransportName } from '@parley/protocol'
import { redisAdapter } from '@parley/redis'
import type { ParleyServerOptions, ServerSocket } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { handoffSniffer } from '../../../test/cluster/sniff.js'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { type Started, startServer, until, within } from '../../server/test/helpers.js'
import { balancedSuite, connectedClient, type SuiteNode } from './e2e-suite.js'

interface Node extends SuiteNode {
  /** Every socket that connected to this node, in order. */
  sockets: ServerSocket[]
  /** Numbered `up` messages received on this node, in order. */
  received: number[]
}

describe.skipIf(skipRedisSuites())('a node that closes while it relays a session of another node', () => {
  const { suite, balance } = balancedSuite<Node>()

  async function startNode(server: ParleyServerOptions): Promise<Node> {
    const redis = await connectedClient(suite.redis.url)
    const node: Node = { started: undefined as unknown as Started, redis, sockets: [], received: [] }
    node.started = await startServer(
      { ...server, adapter: redisAdapter({ client: redis, heartbeatInterval: 300 }) },
      (app) => {
        app.parley.on('connection', (socket) => {
          node.sockets.push(socket)
          socket.on('up', (n: number) => node.received.push(n))
        })
      },
    )
    suite.nodes.push(node)
    return node
  }

  it.each<TransportName>(['sse', 'polling', 'websocket'])(
    'tells a %s client to resume elsewhere: no disconnect, nothing lost',
    async (transport) => {
      const a = await startNode({ handoff: false })
      const b = await startNode({ handoff: { timeout: 3000, retrySpread: 200 } })
      const proxy = await balance([a, b])
      // The session starts on a.
      proxy.avoid.add(1)
      let handoffs = 0
      const client: Socket = connect(`${proxy.url}/parley`, {
        transports: [transport],
        reconnectionDelay: 50,
        reconnectionDelayMax: 200,
        ...handoffSniffer((relayed) => {
          if (relayed) handoffs++
        }),
      })
      suite.clients.push(client)
      const disconnects: string[] = []
      client.on('disconnect', (reason: string) => disconnects.push(reason))
      const got: number[] = []
      client.on('down', (n: number) => got.push(n))
      await until(() => client.connected && a.sockets.length === 1, 5000, 'connected to a')
      const socket = a.sockets[0]!

      // From now on the balancer sends everything to b: the client's next poll, or its resume
      // and the stream or WebSocket after it, go through b, which relays them to a.
      proxy.avoid.clear()
      proxy.avoid.add(0)
      proxy.cut()
      // Numbered traffic both ways, through b.
      let down = 0
      let up = 0
      const talk = () => {
        socket.emit('down', ++down)
        client.emit('up', ++up)
      }
      let traffic = setInterval(talk, 20)
      try {
        await until(() => proxy.forwarded[1]! > 0, 5000, 'a request through b')
        const mark = got.length
        await until(() => got.length >= mark + 5, 5000, 'traffic through b')
        expect(a.started.app.parley.sessionFor(socket.session.sid)).toBeDefined()
        expect(b.started.app.parley.socketsCount).toBe(0)

        // Quiet, everything delivered, the client's stream, poll or WebSocket open through b. (A
        // request that reached b once its drain is over, at once since it holds no session, would
        // be refused 503: a balancer sends that one to another node, see docs/scaling.md; this
        // one does not. During a drain it goes on to a: see get-across-close.test.ts.)
        clearInterval(traffic)
        await until(() => got.length === down && a.received.length === up, 5000, 'the traffic delivered')
        await until(() => socket.session.transport?.http?.nextGetWithin() === undefined, 5000, 'a poll held')
        let lost = false
        client.once('transport_error', () => {
          lost = true
        })
        const closed = b.started.app.close()
        // Told by b as it closes, as a drained session's client is (cut, it would have lost it).
        await until(() => handoffs === 1 || lost, 5000, 'the end of what b relays')
        // Traffic both ways again while the client waits to resume: it keeps what it sends, the
        // session on a what it sends, until the resume.
        traffic = setInterval(talk, 20)
        await within(closed, 8000, 'b closed')
        // A try of the client's reached b once it had closed (the balancer still sends it there),
        // and failed: within the quiet time of a handoff, the application is not told.
        const tried = proxy.forwarded[1]!
        await until(() => proxy.forwarded[1]! > tried, 5000, 'a try at the closed b')
        proxy.avoid.clear()
        proxy.avoid.add(1)
        await until(
          () => client.connected && got.length > down - 5 && got.length > mark + 20,
          8000,
          'resumed on a',
        )
      } finally {
        clearInterval(traffic)
      }
      await until(() => got.length === down && a.received.length === up, 5000, 'everything delivered')
      expect(disconnects).toEqual([])
      expect(handoffs).toBe(1)
      expect(client.id).toBe(socket.id)
      expect(client.recovered).toBe(true)
      expect(got).toEqual(Array.from({ length: down }, (_, i) => i + 1))
      expect(a.received).toEqual(Array.from({ length: up }, (_, i) => i + 1))
      expect(a.sockets).toHaveLength(1)
    },
    65_000,
  )
})
