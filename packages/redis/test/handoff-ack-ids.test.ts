// Ack ids across a handoff over Redis: the old node may still ask the client questions after its
// snapshot (into the tail), while the node taking the session over already asks it through a
// broadcast with acks that reaches the restored socket before the tail is read. The two nodes'
// ids must never meet, or the client's reply to one question settles the other. Two Parley
// servers on one real Redis behind a round-robin proxy, and the real client.
import { connect } from '@parley/client'
import { type RedisAdapter, redisAdapter } from '@parley/redis'
import type { ServerSocket } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { type Started, startServer, until, within } from '../../server/test/helpers.js'
import { balancedSuite, connectedClient, type SuiteNode } from './e2e-suite.js'
import { type Client, HeldInOrder, holding, isSeal } from './handoff-support.js'

interface Node extends SuiteNode {
  connections: ServerSocket[]
}

describe.skipIf(skipRedisSuites())('ack ids across a handoff over Redis', () => {
  const { suite, balance } = balancedSuite<Node>()
  const { nodes, clients } = suite

  /**
   * A node on the suite's Redis; `afterStore` runs once a session's snapshot is stored, before
   * its client is told (the application's code at that moment), and `hold`, given its Redis
   * client, may keep commands of it back. `noForwarding`: its adapter does not send replies back
   * across a handoff, as one of an earlier version (see handoff-replies.test.ts for one that does).
   */
  async function startNode(
    prefix: string,
    own: {
      afterStore?: () => void
      hold?: (client: Client) => (args: string[]) => Promise<unknown> | undefined
      noForwarding?: boolean
    } = {},
  ): Promise<Node> {
    const client = await connectedClient(suite.redis.url)
    const node: Node = { started: undefined as unknown as Started, redis: client, connections: [] }
    const factory = redisAdapter({
      client: own.hold ? holding(client, own.hold(client)) : client,
      prefix,
      heartbeatInterval: 300,
    })
    node.started = await startServer(
      {
        adapter: (sockets) => {
          const adapter = factory(sockets)
          const handOff = adapter.handOff!.bind(adapter)
          adapter.handOff = async (snapshot, ttl) => {
            const stored = await handOff(snapshot, ttl)
            own.afterStore?.()
            return stored
          }
          if (own.noForwarding) adapter.forwardsReplies = () => false
          return adapter
        },
        handoff: { timeout: 5000, retrySpread: 0 },
      },
      (app) => {
        app.parley.on('connection', (socket) => void node.connections.push(socket))
      },
      { return503OnClosing: false, logger: false },
    )
    nodes.push(node)
    return node
  }

  it('numbers the new node’s questions away from those the old node asks in the tail', async () => {
    const prefix = 'ack-ids'
    let old: ServerSocket | undefined
    const outcomes: string[] = []
    // Between the snapshot and the cut, the old node's application asks the client: numbered into
    // the tail, with the old node's next ack id, which the snapshot names (nextAckId).
    const afterStore = () =>
      old!
        .timeout(10_000)
        .emitWithAck('q', 'old')
        .catch((error: { code: string }) => outcomes.push(`old: ${error.code}`))
    // The old node's seal waits: the new node has joined the socket to its rooms, and waits for
    // the tail, which holds that question. Redis is slow on the old node's connection from the
    // seal on: what it sends after the seal waits behind it, unrun.
    let seal: HeldInOrder | undefined
    const hold = (client: Client) => {
      seal = new HeldInOrder(
        client,
        (args) => isSeal(args, '1'),
        () => true,
      )
      return seal.hold
    }
    // The old node's question is rejected as the session moves, and the new node drops its
    // reply: whichever question that reply settled would show.
    const a = await startNode(prefix, { afterStore, hold, noForwarding: true })
    const b = await startNode(prefix)
    const adapterOf = (node: Node) => node.started.app.parley.adapter as RedisAdapter
    await until(
      () => adapterOf(a).liveNodes.length === 1 && adapterOf(b).liveNodes.length === 1,
      5000,
      'a and b live',
    )
    const proxy = await balance([a, b])
    const c = connect(`${proxy.url}/parley`, { transports: ['websocket'], autoConnect: false })
    clients.push(c)
    const asked: { what: string; reply: (answer: string) => void }[] = []
    c.on('q', (what: string, reply: (answer: string) => void) => asked.push({ what, reply }))
    const events: string[] = []
    c.on('connect', () => events.push('connect'))
    c.on('disconnect', (reason: string) => events.push(`disconnect ${reason}`))
    proxy.avoid.add(1)
    c.connect()
    await until(() => c.connected, 3000, 'connect to a')
    const id = c.id!
    old = a.connections[0]!
    proxy.avoid.clear()
    proxy.avoid.add(0)
    const drained = a.started.app.close()
    const joinedOnB = () => b.started.app.parley.sockets.get(id)?.rooms.has(id) === true
    await until(() => seal!.held.length > 0 && joinedOnB(), 5000, 'the cut, and the seal held')
    // A broadcast with acks from the new node reaches the restored socket before its tail is read.
    const broadcast = b.started.app.parley
      .timeout(10_000)
      .to(id)
      .emitWithAck('q', 'new')
      .then((replies) => outcomes.push(`new: ${replies.join()}`))
    await seal!.runAll()
    await until(() => asked.length === 2, 5000, 'both questions at the client')
    expect(asked.map(({ what }) => what)).toEqual(['old', 'new'])
    // Answered newest first: each reply must reach its own question.
    for (const { what, reply } of [...asked].reverse()) reply(`reply to ${what}`)
    await within(broadcast, 5000, 'the broadcast’s replies')
    expect(outcomes).toEqual(['old: PARLEY_SESSION_MOVED', 'new: reply to new'])
    expect(c.id).toBe(id)
    expect(events).toEqual(['connect'])
    await drained
  }, 30_000)
})
