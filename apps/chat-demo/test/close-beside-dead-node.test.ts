// A node closed with a plain `app.close()` (no drain of its own first: Parley's close hook drains
// it) while another node of the cluster was killed a moment before and is still in the live set,
// where every cluster-wide lookup waits for the dead node's answer until the adapter's
// `requestTimeout` (5 s) or until the node leaves the set. The close must end cleanly (Fastify
// rejects it when a close hook outlives `pluginTimeout`), and the person on the node that stays
// must be told that the one whose network went before the close has left.
import type { AddressInfo } from 'node:net'
import { connect, type Socket } from '@parley/client'
import type { RedisAdapter } from '@parley/redis'
import type { FastifyInstance } from 'fastify'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { onFreePort } from '../../../test/support/ports.js'
import { type RedisServer, skipRedisSuites, startRedis } from '../../../test/support/redis-server.js'
import { startTcpProxy, type TcpProxy } from '../../../test/support/tcp-proxy.js'
import { buildChatApp } from '../src/app.js'
import { type ChatCluster, connectRedis } from '../src/cluster.js'
import type { ClientEvents, JoinReply, ServerEvents } from '../src/shared.js'
import { connected } from './connected.js'
import { type ChatNode as NodeProcess, startNode as startProcess, stopNode } from './node-process.js'

type Client = Socket<ServerEvents, ClientEvents>
type ChatNode = { app: FastifyInstance; cluster: ChatCluster; url: string }

describe.skipIf(skipRedisSuites())('a plain close beside a node that was just killed', () => {
  let redis: RedisServer
  const nodes: ChatNode[] = []
  const processes: NodeProcess[] = []
  const clients: Client[] = []
  const proxies: TcpProxy[] = []

  beforeAll(async () => {
    redis = await startRedis()
  })

  afterAll(() => redis?.stop())

  afterEach(async () => {
    for (const c of clients.splice(0)) c.disconnect()
    for (const proxy of proxies.splice(0)) await proxy.close()
    await Promise.all(processes.splice(0).map((p) => stopNode(p, 'SIGKILL')))
    for (const { app } of nodes) for (const socket of [...app.parley.sockets.values()]) socket.disconnect()
    for (const { app, cluster } of nodes.splice(0)) {
      await app.close()
      await cluster.close()
    }
  })

  async function startNode(label: string): Promise<ChatNode> {
    const cluster = await connectRedis(redis.url, { label })
    const app = await buildChatApp({ adapter: cluster.adapter, store: cluster.store })
    await app.listen({ port: 0, host: '127.0.0.1' })
    const node = { app, cluster, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` }
    nodes.push(node)
    return node
  }

  async function person(nickname: string, at: { url: string }): Promise<Client> {
    const socket = connect<ServerEvents, ClientEvents>(at.url, {
      auth: { nickname },
      transports: ['websocket'],
    })
    clients.push(socket)
    return connected(socket)
  }

  const join = (socket: Client, room: string) =>
    new Promise<JoinReply>((resolve) => socket.emit('join', { room }, resolve))

  it('ends cleanly, and the node that stays tells its people who is left', async () => {
    const [a, b] = [await startNode('a'), await startNode('b')]
    const dead = await onFreePort((port) => startProcess('c', port, redis.url))
    processes.push(dead)
    const live = (node: ChatNode) => (node.app.parley.adapter as RedisAdapter).liveNodes.length
    await expect.poll(() => live(a) === 2 && live(b) === 2, { timeout: 10_000 }).toBe(true)

    // Ona reaches node A through a link that can go down; Pim is on node B.
    const link = await startTcpProxy(Number(new URL(a.url).port))
    proxies.push(link)
    const [ona, pim] = [await person('ona', link), await person('pim', b)]
    const heard: string[][] = []
    pim.on('presence', (update) => {
      if (update.room === 'lobby') heard.push(update.people)
    })
    await join(ona, 'lobby')
    await join(pim, 'lobby')
    await expect.poll(() => heard.at(-1), { timeout: 10_000 }).toEqual(['ona', 'pim'])

    // Ona's network goes without a goodbye, node C is killed, and node A closes at once: its drain
    // hands Ona's session off, and nobody claims it within Parley's 5 s.
    link.offline = true
    await stopNode(dead, 'SIGKILL')
    nodes.splice(nodes.indexOf(a), 1)
    await expect(a.app.close()).resolves.toBeUndefined()
    await a.cluster.close()

    // Node A has left (it said so as it closed): node B tells the lobby who is there, once its
    // lookup is over (node C answers nothing: it leaves B's live set within 8 s of the kill).
    await expect.poll(() => heard.at(-1), { timeout: 15_000 }).toEqual(['pim'])
  }, 60_000)
})
