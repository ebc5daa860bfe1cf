// The people lists when the cluster's live nodes change without anyone joining or leaving a room:
// a node cut off from Redis long enough drops out of the others' live set, and their lists lack
// its people (`fetchSockets` no longer asks it); once it is back, the nodes that took it for gone
// must tell their rooms again, or its people would stay off the lists until the room next changed.
import type { AddressInfo } from 'node:net'
import { connect, type Socket } from '@parley/client'
import type { RedisAdapter } from '@parley/redis'
import type { FastifyInstance } from 'fastify'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type RedisServer, skipRedisSuites, startRedis } from '../../../test/support/redis-server.js'
import { startTcpProxy, type TcpProxy } from '../../../test/support/tcp-proxy.js'
import { buildChatApp } from '../src/app.js'
import { type ChatCluster, connectRedis } from '../src/cluster.js'
import type { ClientEvents, JoinReply, ServerEvents } from '../src/shared.js'
import { connected } from './connected.js'

type Client = Socket<ServerEvents, ClientEvents>
type ChatNode = { app: FastifyInstance; cluster: ChatCluster; url: string }

describe.skipIf(skipRedisSuites())("the people lists when the cluster's live nodes change", () => {
  let redis: RedisServer
  const nodes: ChatNode[] = []
  const clients: Client[] = []
  const proxies: TcpProxy[] = []

  beforeAll(async () => {
    redis = await startRedis()
  })

  afterAll(() => redis?.stop())

  afterEach(async () => {
    for (const c of clients.splice(0)) c.disconnect()
    for (const proxy of proxies) proxy.offline = false
    for (const { app } of nodes) for (const socket of [...app.parley.sockets.values()]) socket.disconnect()
    for (const { app, cluster } of nodes.splice(0)) {
      await app.close()
      await cluster.close()
    }
    for (const proxy of proxies.splice(0)) await proxy.close()
  })

  /** A chat node on the test's Redis, reached at `redisUrl` (the test's Redis by default). */
  async function startNode(label: string, redisUrl = redis.url): Promise<ChatNode> {
    const cluster = await connectRedis(redisUrl, { label })
    const app = await buildChatApp({ adapter: cluster.adapter, store: cluster.store })
    await app.listen({ port: 0, host: '127.0.0.1' })
    const node = { app, cluster, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` }
    nodes.push(node)
    return node
  }

  async function person(nickname: string, at: ChatNode): Promise<Client> {
    const socket = connect<ServerEvents, ClientEvents>(at.url, {
      auth: { nickname },
      transports: ['websocket'],
    })
    clients.push(socket)
    return connected(socket)
  }

  const join = (socket: Client, room: string) =>
    new Promise<JoinReply>((resolve) => socket.emit('join', { room }, resolve))

  it('lists the people of a node cut off from Redis again once it is back', async () => {
    // Node A reaches Redis through a link that can go down; node B directly.
    const link = await startTcpProxy(Number(new URL(redis.url).port))
    proxies.push(link)
    const a = await startNode('a', `redis://127.0.0.1:${new URL(link.url).port}`)
    const b = await startNode('b')
    const live = (node: ChatNode) => (node.app.parley.adapter as RedisAdapter).liveNodes.length
    await expect.poll(() => live(a) === 1 && live(b) === 1, { timeout: 10_000 }).toBe(true)

    const [ona, pim] = [await person('ona', a), await person('pim', b)]
    const heard: string[][] = []
    pim.on('presence', (update) => {
      if (update.room === 'lobby') heard.push(update.people)
    })
    await join(ona, 'lobby')
    await join(pim, 'lobby')
    await expect.poll(() => heard.at(-1), { timeout: 10_000 }).toEqual(['ona', 'pim'])

    // Node A misses three heartbeats: node B takes it for gone, and tells the lobby who it finds.
    link.offline = true
    await expect.poll(() => heard.at(-1), { timeout: 20_000 }).toEqual(['pim'])
    // Back: node B sees node A again, and tells the lobby again, Ona in it.
    link.offline = false
    await expect.poll(() => heard.at(-1), { timeout: 20_000 }).toEqual(['ona', 'pim'])
  }, 60_000)
})
