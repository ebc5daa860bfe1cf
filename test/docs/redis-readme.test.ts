/**
 * The @parley/redis README and docs/scaling.md, run as a user would: two nodes set up as the
 * README's first example does (each its own node-redis client, the adapter given `app.log`, and
 * the `onClose` hook that closes the adapter, then the client), a balancer without session
 * affinity in front, the real client through it. Then the drain of the server README's "drain
 * with handoff" example: the client resumes on the other node with nothing lost.
 */
import { connect, type Socket } from '@parley/client'
import { type RedisAdapter, redisAdapter } from '@parley/redis'
import parley, { type ServerSocket } from '@parley/server'
import Fastify, { type FastifyInstance } from 'fastify'
import { createClient } from 'redis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { closeApp, until, within } from '../../packages/server/test/helpers.js'
import { type RedisServer, skipRedisSuites, startRedis } from '../support/redis-server.js'
import { type RoundRobinProxy, startRoundRobin } from '../support/round-robin.js'

interface Node {
  app: FastifyInstance
  port: number
  /** Sockets `connection` gave, then those `restored` gave. */
  opened: ServerSocket[]
  restored: ServerSocket[]
  /** The reasons of the `disconnect` events of this node's sockets. */
  ended: string[]
}

/** The README's first example, with the `connection` and `restored` handlers of the drain's. */
async function readmeNode(url: string): Promise<Node> {
  const app = Fastify()
  const redis = createClient({ url })
  // node-redis emits 'error' at every reconnect attempt while Redis is away (a steady stream
  // with a wrong URL or password), and throws one that nobody listens to: log the first of each
  // outage, and its end. The adapter says what the outage costs in its own lines.
  let redisDown = false
  redis.on('error', (err) => {
    if (!redisDown) app.log.warn({ err }, 'redis: connection lost; node-redis reconnects by itself')
    redisDown = true
  })
  redis.on('ready', () => {
    if (redisDown) app.log.info('redis: connection back')
    redisDown = false
  })
  await redis.connect()
  await app.register(parley, { path: '/parley', adapter: redisAdapter({ client: redis, log: app.log }) })
  // Parley closes its adapter when the app closes; close it yourself first when your hook
  // closes the Redis client it uses (a second close does nothing).
  app.addHook('onClose', async () => {
    await (app.parley.adapter as RedisAdapter).close()
    await redis.close()
  })
  const node: Node = { app, port: 0, opened: [], restored: [], ended: [] }
  const setup = (socket: ServerSocket) => {
    socket.on('chat', (text: string, ack: (ok: boolean) => void) => ack(text.length > 0))
    socket.on('disconnect', (reason) => node.ended.push(reason))
  }
  app.parley
    .on('connection', (socket) => {
      node.opened.push(socket)
      socket.data.user = (socket.handshake.auth as { user: string }).user
      socket.join('lobby')
      setup(socket)
    })
    .on('restored', (socket) => {
      node.restored.push(socket)
      setup(socket)
    })
  await (app.parley.adapter as RedisAdapter).ready()
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (!address || typeof address === 'string') throw new Error('no port')
  node.port = address.port
  return node
}

describe.skipIf(skipRedisSuites())('@parley/redis README: two nodes, no sticky sessions', () => {
  let redis: RedisServer | undefined
  let nodes: Node[] = []
  let proxy: RoundRobinProxy | undefined
  const clients: Socket[] = []

  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => {
    await redis?.stop()
  })
  afterEach(async () => {
    for (const client of clients.splice(0)) client.disconnect()
    await proxy?.close()
    proxy = undefined
    for (const node of nodes.splice(0)) await closeApp(node.app)
  })

  it.each(['websocket', 'polling'] as const)(
    'serves a %s client whose requests reach either node, and hands its session on when its node drains',
    async (transport) => {
      if (!redis) throw new Error('no redis')
      nodes = [await readmeNode(redis.url), await readmeNode(redis.url)]
      const adapters = nodes.map((node) => node.app.parley.adapter as RedisAdapter)
      await until(
        () => adapters.every((adapter) => adapter.liveNodes.length === 1),
        5000,
        'the nodes to see each other',
      )
      proxy = await startRoundRobin(nodes.map((node) => node.port))

      const open = (user: string) => {
        const client = connect(`${proxy?.url}/parley`, {
          transports: [transport],
          auth: { user },
          ackTimeout: 5000,
        })
        clients.push(client)
        return client
      }
      const ann = open('ann')
      const bob = open('bob')
      const news = new Map<Socket, unknown[]>([
        [ann, []],
        [bob, []],
      ])
      for (const [client, box] of news) client.on('news', (n: unknown) => box.push(n))
      const annEvents: string[] = []
      ann.on('disconnect', (reason) => annEvents.push(`disconnect ${reason}`))
      ann.on('transport', (now, before, why) => annEvents.push(`transport ${before} -> ${now} (${why})`))
      await until(() => ann.connected && bob.connected, 5000, 'both clients connected')
      // Every request of a polling client goes to the next node: half of them are forwarded.
      for (let i = 0; i < 4; i++) expect(await ann.emitWithAck('chat', `hello ${i}`)).toBe(true)

      // Broadcasts and fetchSockets reach the sockets of every node, from either node.
      nodes[0]!.app.parley.to('lobby').emit('news', 1)
      nodes[1]!.app.parley.to('lobby').emit('news', 2)
      await until(() => [...news.values()].every((box) => box.length === 2), 5000, 'the news on both clients')
      const fetched = await nodes[1]!.app.parley.in('lobby').fetchSockets()
      expect(fetched.map((s) => (s.data as { user: string }).user).sort()).toEqual(['ann', 'bob'])

      // The deploy: the node that holds ann's session drains, as on SIGTERM.
      const owner = nodes.findIndex((node) => node.opened.some((s) => s.data.user === 'ann'))
      const other = nodes[1 - owner]!
      proxy.avoid.add(owner)
      const leaving = nodes[owner]!
      await within(leaving.app.parley.drain(), 10_000, 'the drain')
      await within(leaving.app.close(), 10_000, 'the close')
      nodes.splice(owner, 1)

      await until(
        () => other.restored.some((s) => s.data.user === 'ann'),
        8000,
        'ann restored on the other node',
      )
      const restored = other.restored.find((s) => s.data.user === 'ann')!
      expect([...restored.rooms].sort()).toEqual([restored.id, 'lobby'].sort())
      expect(leaving.ended).toContain('server handoff')
      await until(() => ann.connected, 8000, 'ann connected again')
      expect(ann.recovered).toBe(true)
      expect(annEvents.filter((e) => e.startsWith('disconnect'))).toEqual([])
      expect(annEvents.some((e) => e.endsWith('(resume)'))).toBe(true)
      other.app.parley.to('lobby').emit('news', 3)
      await until(
        () => [...news.values()].every((box) => box.length === 3),
        5000,
        'the news after the handoff',
      )
      // 1 and 2 come from two nodes, in either order; 3 after both, once.
      const got = news.get(ann) ?? []
      expect([[...got.slice(0, 2)].sort(), got.slice(2)]).toEqual([[1, 2], [3]])
      expect(await ann.emitWithAck('chat', 'still here')).toBe(true)
    },
    65_000,
  )
})
