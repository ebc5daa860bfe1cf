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
import type { RoundRobinProxy } from '../../../test/support/round-robin.js'
import { memoryStorage } from '../../client/test/helpers.js'
import { type Started, sleep, startServer, until, within } from '../../server/test/helpers.js'
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

/**
 * The heartbeat interval of a node that must not read the live set again during a test: longer
 * than each test's waits (a few seconds), well within the 60 s an adapter allows.
 */
const LATE_HEARTBEAT = 20_000

describe.skipIf(skipRedisSuites())('a node whose heartbeat record lapsed', () => {
  const { suite, balance } = balancedSuite<LapsingNode>()
  const { nodes, clients } = suite

  async function startNode(heartbeatInterval = HEARTBEAT): Promise<LapsingNode> {
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
          heartbeatInterval,
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

  /**
   * A client of `transport` through `proxy`, connected to `owner` (the proxy's backend 0) and
   * kept from the others: its session's node.
   */
  async function clientOn(owner: LapsingNode, proxy: RoundRobinProxy, transport: TransportName) {
    for (let i = 1; i < proxy.forwarded.length; i++) proxy.avoid.add(i)
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
    return { client, events, down }
  }

  /** The owner's record goes, and its heartbeats fail: to the other nodes, it is gone. */
  async function lapse(owner: LapsingNode): Promise<void> {
    owner.lapse = true
    // On the adapter's own connection, after any heartbeat sent before: none writes it again.
    await owner.redis.del(`${defaults.prefix}:node:${owner.adapter.node}`)
  }

  /**
   * From now on every request of `client`, and every connection it makes again, reaches `other`
   * (the proxy's backend `index`); numbered messages both ways and an echo go through: the same
   * session, on the owner.
   */
  async function expectServedThrough(
    owner: LapsingNode,
    other: LapsingNode,
    index: number,
    proxy: RoundRobinProxy,
    { client, events, down }: Awaited<ReturnType<typeof clientOn>>,
  ): Promise<void> {
    const id = client.id
    const socket = owner.sockets[0]!
    proxy.avoid.clear()
    for (let i = 0; i < proxy.forwarded.length; i++) if (i !== index) proxy.avoid.add(i)
    const before = proxy.forwarded[index]!
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
    expect(proxy.forwarded[index]!).toBeGreaterThan(before)
    expect(events.filter((e) => e.startsWith('disconnect'))).toEqual([])
  }

  it.each(TRANSPORTS)('keeps serving its %s sessions through the other nodes', async (transport) => {
    const owner = await startNode()
    const other = await startNode()
    await until(() => other.adapter.liveNodes.includes(owner.adapter.node), 3000, 'the owner live')
    const proxy = await balance([owner, other])
    const client = await clientOn(owner, proxy, transport)

    await lapse(owner)
    await until(
      () => !other.adapter.liveNodes.includes(owner.adapter.node),
      3000,
      'the other node to take the owner for gone',
    )
    await expectServedThrough(owner, other, 1, proxy, client)
  })

  // A node that never saw the owner live (it started after the lapse) finds its address in the
  // owner's address record, which outlives its heartbeat record.
  it.each(TRANSPORTS)(
    'keeps serving its %s sessions through a node that started after the lapse',
    async (transport) => {
      const owner = await startNode()
      const proxy = await balance([owner])
      const client = await clientOn(owner, proxy, transport)

      await lapse(owner)
      const late = await startNode()
      expect(late.adapter.liveNodes).toEqual([])
      const index = proxy.add(Number(new URL(late.started.base).port))
      await expectServedThrough(owner, late, index, proxy, client)
    },
  )

  // A node that found no address record of the owner while it was out (a node of an earlier
  // version writes none; Redis may have lost it) answers its sessions' requests as of no session.
  // Once the owner comes back, it says so, and that node sends them there again at once, not
  // only at its own next heartbeat: its client keeps its session. Over HTTP: a WebSocket resume
  // that reaches it asks the owner, live again, to hand the session over (see handoff-e2e).
  it.each(['polling', 'sse'] as const)(
    'serves its %s sessions through a node that found no address record of it, as soon as it comes back',
    async (transport) => {
      const owner = await startNode()
      const proxy = await balance([owner])
      const client = await clientOn(owner, proxy, transport)
      const sid = owner.sockets[0]!.session.sid

      await lapse(owner)
      const addressKey = `${defaults.prefix}:node:${owner.adapter.node}:address`
      await owner.redis.del(addressKey)
      // late reads the live set at its start, then only every LATE_HEARTBEAT: the time between
      // two heartbeats, which the owner's return falls within.
      const late = await startNode(LATE_HEARTBEAT)
      expect(late.adapter.liveNodes).toEqual([])
      // Looked up while the owner is out: nowhere to send it.
      expect(await late.adapter.sessionOwner(sid)).toBe('unknown')
      // The owner's next heartbeat writes its record and its address again.
      owner.lapse = false
      await expect.poll(() => owner.redis.exists(addressKey), { timeout: 3000 }).toBe(1)
      // Told, late sends the session to its owner within moments, not at its next heartbeat.
      let answer = await late.adapter.sessionOwner(sid)
      for (let i = 0; i < 100 && answer === 'unknown'; i++) {
        await sleep(20)
        answer = await late.adapter.sessionOwner(sid)
      }
      expect(answer, 'late to send the session to its owner, back').toMatchObject({
        node: owner.adapter.node,
      })
      const index = proxy.add(Number(new URL(late.started.base).port))
      await expectServedThrough(owner, late, index, proxy, client)
    },
  )
})
