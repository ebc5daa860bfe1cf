// A node whose heartbeat lapses (its process stalled, or its Redis slow to answer it, for three
// heartbeats) drops out of the other nodes' live sets while it is alive and holds its sessions.
// A request for one of them that reaches another node goes to it all the same: its client keeps
// its session, on every transport. Two Parley servers on one Redis behind a round-robin proxy,
// the real client; the owner's record removed and its heartbeats failing, as drain-climb's
// lapse round does.
import { connect } from '@parley/client'
import type { TransportName } from '@parley/protocol'
import { defaults, type RedisAdapter, redisAdapter } from '@parley/redis'
import type { ServerSocket } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { memoryStorage } from '../../client/test/helpers.js'
import { type Started, startServer, until, within } from '../../server/test/helpers.js'
import { balancedSuite, connectedClient, type SuiteNode } from './e2e-suite.js'
import { holding } from './handoff-support.js'
import { HEARTBEAT } from './nodes.js'

interface LapsingNode extends SuiteNode {
  adapter: RedisAdapter
  sockets: ServerSocket[]
  /** Numbered `up` messages received on this node, in order. */
  received: number[]
  /** From now on every heartbeat of this node fails, as one Redis does not answer in time. */
  lapse: boolean
}

const TRANSPORTS: TransportName[] = ['polling', 'sse', 'websocket']

describe.skipIf(skipRedisSuites())('a node whose heartbeat record lapsed', () => {
  const { suite, balance } = balancedSuite<LapsingNode>()
  const { nodes, clients } = suite

  async function startNode(): Promise<LapsingNode> {
    const redis = await connectedClient(suite.redis.url)
    const beat = (args: string[]) => args[0] === 'EVAL' && !!args[1]?.includes("'ZREMRANGEBYSCORE'")
    const node: LapsingNode = {
      started: undefined as unknown as Started,
      adapter: undefined as unknown as RedisAdapter,
      redis,
      sockets: [],
      received: [],
      lapse: false,
    }
    const failing = (args: string[]) =>
      node.lapse && beat(args) ? Promise.reject(new Error('the heartbeat lapses (test)')) : undefined
    node.started = await startServer(
      {
        adapter: redisAdapter({
          client: holding(redis, failing),
          heartbeatInterval: HEARTBEAT,
          log: { warn: () => {} },
        }),
      },
      (app) => {
        app.parley.on('connection', (socket) => {
          node.sockets.push(socket)
          socket.on('up', (n: number) => void node.received.push(n))
          socket.on('echo', (n: number, ack?: (n: number) => void) => ack?.(n))
        })
      },
    )
    node.adapter = node.started.app.parley.adapter as RedisAdapter
    await node.adapter.ready()
    nodes.push(node)
    return node
  }

  it.each(TRANSPORTS)('keeps serving its %s sessions through the other nodes', async (transport) => {
    const owner = await startNode()
    const other = await startNode()
    await until(() => other.adapter.liveNodes.includes(owner.adapter.node), 3000, 'the owner live')
    const proxy = await balance([owner, other])
    // The handshake reaches the owner.
    proxy.avoid.add(1)
    const client = connect(`${proxy.url}/parley`, {
      transports: [transport],
      storage: memoryStorage(),
    })
    clients.push(client)
    const events: string[] = []
    client.on('disconnect', (reason: string) => events.push(`disconnect ${reason}`))
    client.on('connect', () => events.push('connect'))
    const down: number[] = []
    client.on('down', (n: number) => down.push(n))
    await until(() => client.connected && owner.sockets.length === 1, 3000, 'the client on the owner')
    const id = client.id
    const socket = owner.sockets[0]!

    // The owner's record goes, and its heartbeats fail: the other node takes it for gone.
    owner.lapse = true
    await owner.redis.del(`${defaults.prefix}:node:${owner.adapter.node}`)
    await until(
      () => !other.adapter.liveNodes.includes(owner.adapter.node),
      3000,
      'the other node to take the owner for gone',
    )
    // From now on every request, and every connection made again, reaches the other node.
    proxy.avoid.clear()
    proxy.avoid.add(0)
    const before = proxy.forwarded[1]!
    proxy.cut()

    for (let n = 1; n <= 3; n++) {
      client.emit('up', n)
      socket.emit('down', n)
    }
    expect(await within(client.timeout(5000).emitWithAck('echo', 7), 6000, 'the echo')).toBe(7)
    // The same session, on the owner, reached through the other node: not a new one there.
    expect(client.id).toBe(id)
    expect(other.sockets).toHaveLength(0)
    await until(() => owner.received.length === 3 && down.length === 3, 5000, 'the messages both ways')
    expect(owner.received).toEqual([1, 2, 3])
    expect(down).toEqual([1, 2, 3])
    expect(owner.sockets).toHaveLength(1)
    expect(proxy.forwarded[1]!).toBeGreaterThan(before)
    expect(events.filter((e) => e.startsWith('disconnect'))).toEqual([])
  })
})
