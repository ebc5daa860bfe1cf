// What a session is sent while its handoff waits for Redis (away a moment, see
// `HandingOff.handOff`): the server numbers it into the tail from the freeze on, before the
// handoff's entry exists. Stored once Redis is back, the claimer finds it first in the tail, and
// the client gets it once on the other node; given up on while still waiting (the server thaws
// the session), nothing of it goes to Redis, and the client gets it once from the old node,
// which kept it. Two Parley servers on one real Redis behind a round-robin balancer, the old
// node's way to Redis through a link the test cuts, and the real client.
import { connect } from '@parley/client'
import { type RedisAdapter, redisAdapter } from '@parley/redis'
import type { AdapterFactory, ServerSocket } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import type { RoundRobinProxy } from '../../../test/support/round-robin.js'
import { startTcpProxy, type TcpProxy } from '../../../test/support/tcp-proxy.js'
import { type Started, sleep, startServer, until } from '../../server/test/helpers.js'
import { balancedSuite, connectedClient, type SuiteNode } from './e2e-suite.js'

interface Node extends SuiteNode {
  connections: ServerSocket[]
  restored: ServerSocket[]
  /** How many handoffs the node's adapter was asked for, and how many of them answered. */
  handOffs: { asked: number; answered: boolean[] }
}

describe.skipIf(skipRedisSuites())('a handoff that waits for Redis', () => {
  let proxy: RoundRobinProxy | undefined
  /** Node a's way to Redis. */
  let link: TcpProxy | undefined
  const { suite, balance } = balancedSuite<Node>({
    afterNodes: async () => {
      await link?.close()
      link = undefined
    },
  })
  const { nodes, clients } = suite
  let prefixes = 0

  /**
   * A node on `prefix`; `before` runs when its adapter is asked for a handoff, `waiting` once
   * its `handOff` is under way (waiting for Redis, when it is away), before it answers.
   */
  async function startNode(
    prefix: string,
    url: string,
    timeout: number,
    waiting: (socket: ServerSocket | undefined) => void = () => {},
    before: () => Promise<void> = () => Promise.resolve(),
  ): Promise<Node> {
    const client = await connectedClient(url)
    const node: Node = {
      started: undefined as unknown as Started,
      redis: client,
      connections: [],
      restored: [],
      handOffs: { asked: 0, answered: [] },
    }
    const factory = redisAdapter({ client, prefix, heartbeatInterval: 300, requestTimeout: 5000 })
    const adapter: AdapterFactory = (sockets) => {
      const made = factory(sockets)
      const handOff = made.handOff!.bind(made)
      made.handOff = async (snapshot, ttl) => {
        node.handOffs.asked++
        await before()
        const stored = handOff(snapshot, ttl)
        waiting(node.connections.find((socket) => socket.id === snapshot.id))
        const answer = await stored
        node.handOffs.answered.push(answer)
        return answer
      }
      return made
    }
    node.started = await startServer(
      { adapter, handoff: { timeout, retrySpread: 0 } },
      (app) => {
        app.parley.on('connection', (socket) => node.connections.push(socket))
        app.parley.on('restored', (socket) => node.restored.push(socket))
      },
      { return503OnClosing: false },
    )
    nodes.push(node)
    return node
  }

  /**
   * Nodes a (reaching Redis through `link`, with the server's handoff timeout `timeout`) and b,
   * and a client on a, its news counted; a sends news 1 from inside its handoff's wait.
   */
  async function setup(timeout: number, before?: (a: Node) => Promise<void>) {
    const prefix = `wait${prefixes++}`
    link = await startTcpProxy(suite.redis.port)
    const a: Node = await startNode(
      prefix,
      `redis://127.0.0.1:${new URL(link.url).port}`,
      timeout,
      (socket) => socket?.emit('news', 1),
      () => before?.(a) ?? Promise.resolve(),
    )
    const b = await startNode(prefix, suite.redis.url, 3000)
    const adapterOf = (node: Node) => node.started.app.parley.adapter as RedisAdapter
    await until(
      () => adapterOf(a).liveNodes.length === 1 && adapterOf(b).liveNodes.length === 1,
      5000,
      'a and b live',
    )
    proxy = await balance([a, b])
    const c = connect(`${proxy.url}/parley`, {
      transports: ['websocket'],
      autoConnect: false,
      reconnectionDelay: 100,
      reconnectionDelayMax: 300,
    })
    clients.push(c)
    const got: number[] = []
    c.on('news', (n: number) => got.push(n))
    proxy.avoid.add(1)
    c.connect()
    await until(() => c.connected, 3000, 'connect to a')
    proxy.avoid.clear()
    return { a, b, c, got }
  }

  /** Cuts a off from Redis, until its client says so. */
  async function cutA(a: Node): Promise<void> {
    link!.offline = true
    await until(() => !a.redis.isReady, 5000, 'a cut off from Redis')
  }

  it('writes what a session was sent while its drain waited for Redis first in its tail: the client gets it once, on the other node', async () => {
    const { a, b, c, got } = await setup(5000)
    const id = c.id
    await cutA(a)
    proxy!.avoid.add(0)
    const draining = a.started.app.close()
    await until(() => a.handOffs.asked === 1, 3000, 'the handoff under way')
    await sleep(300)
    link!.offline = false
    await until(() => b.restored.length === 1 && c.connected, 8000, 'resumed on b')
    await draining
    await until(() => got.length > 0, 3000, 'news 1')
    await sleep(200)
    expect(a.handOffs.answered).toEqual([true])
    expect(c.recovered).toBe(true)
    expect(c.id).toBe(id)
    expect(got).toEqual([1])
  })

  it('keeps on the old node what a session was sent while its move waited for Redis past the server’s patience: the client gets it once, from there', async () => {
    // The WebSocket resumes on b, which asks a for the session (over Redis): a is cut off from
    // Redis as it starts the handoff, which waits for Redis past handoff.timeout (1 s); the
    // server thaws the session and takes the resume b relays to it.
    const { a, b, c, got } = await setup(1000, cutA)
    proxy!.avoid.add(0)
    proxy!.cut()
    await until(() => a.handOffs.asked === 1, 3000, 'the handoff under way')
    await until(() => got.length > 0, 5000, 'news 1, from a')
    link!.offline = false
    await until(() => a.handOffs.answered.length === 1, 8000, 'the handoff answered')
    await until(() => a.redis.isReady, 5000, 'a reaches Redis again')
    await sleep(300)
    expect(a.handOffs.answered).toEqual([false])
    expect(c.connected).toBe(true)
    expect(c.recovered).toBe(true)
    expect(b.restored).toEqual([])
    expect(a.started.app.parley.sockets.size).toBe(1)
    expect(got).toEqual([1])
  }, 30_000)
})
