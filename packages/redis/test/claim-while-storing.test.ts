// A session claimed by another node before its draining node heard that its snapshot was stored:
// the client climbed to WebSocket while its node drained, and the upgrade reached another node,
// which found the session handed off and took it over. The draining node must end its copy at
// the claim, as for any claim (its last packets go into the tail, nothing more is numbered into
// a tail nobody reads), and not wait for a claim that came already.
import { connect } from '@parley/client'
import { ErrorCode } from '@parley/protocol'
import { redisAdapter } from '@parley/redis'
import type { ServerSocket } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { memoryStorage } from '../../client/test/helpers.js'
import { type Started, startServer, until, within } from '../../server/test/helpers.js'
import { balancedSuite, connectedClient, type SuiteNode } from './e2e-suite.js'

interface Node extends SuiteNode {
  sockets: ServerSocket[]
  restored: ServerSocket[]
  /** Replies to 'ask' that the test gives itself. */
  asked: ((answer: string) => void)[]
  /** Set: every snapshot this node stores is answered only once it resolves. */
  gate?: Promise<void>
  /** Snapshots stored, their answers held by `gate`. */
  stored: number
}

describe.skipIf(skipRedisSuites())(
  'a claim that comes before the drain heard its snapshot was stored',
  () => {
    const { suite, balance } = balancedSuite<Node>()
    const { nodes, clients } = suite

    async function startNode(): Promise<Node> {
      const client = await connectedClient(suite.redis.url)
      const node: Node = {
        started: undefined as unknown as Started,
        redis: client,
        sockets: [],
        restored: [],
        asked: [],
        stored: 0,
      }
      node.started = await startServer(
        {
          adapter: (sockets) => {
            const adapter = redisAdapter({ client, heartbeatInterval: 300 })(sockets)
            const handOff = adapter.handOff.bind(adapter)
            // Stored in Redis, claimable there; the drain hears of it once the gate opens.
            adapter.handOff = async (snapshot, ttl) => {
              const stored = await handOff(snapshot, ttl)
              node.stored++
              await node.gate
              return stored
            }
            return adapter
          },
          // Longer than the test waits for the drain: one that waits for a claim that came already
          // ends only then.
          handoff: { timeout: 8000, retrySpread: 0 },
        },
        (app) => {
          app.parley.on('connection', (socket) => {
            node.sockets.push(socket)
            socket.on('ask', (_question: string, reply: (answer: string) => void) => node.asked.push(reply))
          })
          app.parley.on('restored', (socket) => node.restored.push(socket))
        },
        { return503OnClosing: false, pluginTimeout: 60_000 },
      )
      nodes.push(node)
      return node
    }

    it('ends the session there at the claim: its open request is answered, and the drain ends', async ({
      onTestFinished,
    }) => {
      const a = await startNode()
      const b = await startNode()
      const proxy = await balance([a, b])
      // The handshake reaches a, the upgrade b.
      proxy.avoid.add(1)
      const c = connect(`${proxy.url}/parley`, {
        transports: ['sse', 'websocket'],
        // Its own: the client starts on its first transport, not on one another client remembers.
        storage: memoryStorage(),
        upgradeDelay: 300,
      })
      clients.push(c)
      await until(() => c.connected && a.sockets.length === 1, 3000, 'connect on a')
      expect(c.transport).toBe('sse')
      const onA = a.sockets[0]!
      const ended: string[] = []
      onA.on('disconnect', (reason: string) => ended.push(reason))
      // A request a's handler has not answered when the drain freezes the session.
      const answer = c.timeout(20_000).emitWithAck('ask', 'q')
      answer.catch(() => {})
      await until(() => a.asked.length === 1, 3000, 'the request on a')
      proxy.avoid.clear()
      proxy.avoid.add(0)

      let opened: () => void = () => {}
      a.gate = new Promise((resolve) => {
        opened = resolve
      })
      onTestFinished(() => opened())
      const closed = a.started.app.close()
      await until(() => a.stored === 1, 3000, 'the snapshot stored')
      // The client climbs: its upgrade reaches b, which claims the session and takes it over.
      await until(() => c.transport === 'websocket' && b.restored.length === 1, 5000, 'the climb to b')
      // a's copy ended at the claim: the request it left open was answered into the tail.
      expect(ended).toEqual(['server handoff'])
      await expect(within(answer, 3000, 'the answer')).rejects.toMatchObject({
        code: ErrorCode.SESSION_MOVED,
      })
      // The reply its handler makes now goes nowhere: the session is b's.
      a.asked[0]!('too late')
      opened()
      // Claimed already: the drain waits for no claim.
      await within(closed, 5000, 'the drain')
      expect(c.connected).toBe(true)
      expect(c.recovered).toBe(true)
      expect(b.restored[0]!.id).toBe(onA.id)
    }, 30_000)
  },
)
