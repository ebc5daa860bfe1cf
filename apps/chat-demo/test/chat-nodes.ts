// Chat nodes in the test's own process, on one Redis per suite, with the people who talk to them
// (the Node client, on WebSocket): for the suites that move sessions between nodes or cut a node
// off, where the browser and nginx of `chat-cluster.ts` are not needed.
import type { AddressInfo } from 'node:net'
import { type ClientOptions, connect, type Socket } from '@parley/client'
import type { RedisAdapter } from '@parley/redis'
import type { FastifyInstance } from 'fastify'
import { afterAll, afterEach, beforeAll } from 'vitest'
import { type RedisServer, startRedis } from '../../../test/support/redis-server.js'
import { releaseAll } from '../../../test/support/release.js'
import { startTcpProxy, type TcpProxy } from '../../../test/support/tcp-proxy.js'
import { buildChatApp, type ChatAppOptions } from '../src/app.js'
import { type ChatCluster, type ClusterOptions, connectRedis } from '../src/cluster.js'
import type { ClientEvents, JoinReply, ServerEvents } from '../src/shared.js'
import { connected } from './connected.js'

export type Client = Socket<ServerEvents, ClientEvents>
export type ChatNode = { app: FastifyInstance; cluster: ChatCluster; url: string }

/** How many other nodes `node` takes for live. */
export const liveNodes = (node: ChatNode) => (node.app.parley.adapter as RedisAdapter).liveNodes.length

/** Joins `room`; resolves with the node's reply. */
export const join = (socket: Client, room: string) =>
  new Promise<JoinReply>((resolve) => socket.emit('join', { room }, resolve))

/** Every people list `socket` is told of for `room`, in order, from now on. */
export function peopleHeard(socket: Client, room: string): string[][] {
  const heard: string[][] = []
  socket.on('presence', (update) => {
    if (update.room === room) heard.push(update.people)
  })
  return heard
}

/**
 * A suite's Redis, started before its tests and stopped after them, and the nodes, people and
 * proxies each test starts, closed after that test: people first, then every session (a node
 * that closes with sessions alive drains them, waiting seconds for clients that are gone), the
 * nodes, and last the proxies (a node may reach Redis through one: put back online for its close).
 */
export function chatNodesSuite() {
  let redis: RedisServer | undefined
  /** The nodes closed after the test; a test that closes one itself takes it out first. */
  const nodes: ChatNode[] = []
  const clients: Client[] = []
  const proxies: TcpProxy[] = []

  const suiteRedis = (): RedisServer => {
    if (!redis) throw new Error('no redis: the suite has not started')
    return redis
  }

  beforeAll(async () => {
    redis = await startRedis()
  })

  afterAll(() => redis?.stop())

  afterEach(async () => {
    for (const c of clients.splice(0)) c.disconnect()
    for (const proxy of proxies) proxy.offline = false
    for (const { app } of nodes) for (const socket of [...app.parley.sockets.values()]) socket.disconnect()
    // Every node and proxy is closed even when a close before it fails (then the first failure).
    await releaseAll([
      ...nodes.splice(0).flatMap(({ app, cluster }) => [() => app.close(), () => cluster.close()]),
      ...proxies.splice(0).map((proxy) => () => proxy.close()),
    ])
  })

  return {
    nodes,

    /** The suite's Redis. */
    get redis(): RedisServer {
      return suiteRedis()
    },

    /**
     * A chat node on the suite's Redis, reached at `redisUrl` (the suite's Redis by default),
     * listening on `port` (a free one by default), with Parley's drain options `handoff`, and the
     * adapter's `heartbeatInterval` and the Redis client's `reconnectDelay` when given (see
     * `connectRedis`; their defaults otherwise). `adopts: false`: the adapter has no
     * `askAdoption`, so that the node's drain leaves the sessions nobody claimed between the nodes
     * (sealed), as an adapter without it does, rather than have a live node adopt them.
     */
    async startNode(
      label: string,
      options: {
        redisUrl?: string
        port?: number
        handoff?: ChatAppOptions['handoff']
        adopts?: boolean
      } & Pick<ClusterOptions, 'heartbeatInterval' | 'reconnectDelay'> = {},
    ): Promise<ChatNode> {
      const { heartbeatInterval, reconnectDelay } = options
      const cluster = await connectRedis(options.redisUrl ?? suiteRedis().url, {
        label,
        ...(heartbeatInterval !== undefined ? { heartbeatInterval } : {}),
        ...(reconnectDelay !== undefined ? { reconnectDelay } : {}),
      })
      let app: FastifyInstance | undefined
      try {
        const adapter = cluster.adapter
        app = await buildChatApp({
          adapter:
            options.adopts === false
              ? (sockets) => Object.assign(adapter(sockets), { askAdoption: undefined })
              : adapter,
          store: cluster.store,
          handoff: options.handoff,
        })
        await app.listen({ port: options.port ?? 0, host: '127.0.0.1' })
      } catch (err) {
        // Not in `nodes` yet, so the teardown would not see it: let go of what it holds here. The
        // start's own failure is the one the test reports, not a close's after it.
        await releaseAll([() => app?.close(), () => cluster.close()]).catch(() => {})
        throw err
      }
      const node = { app, cluster, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` }
      nodes.push(node)
      return node
    },

    /**
     * A connected client of the node (or proxy) at `at`, called `nickname`, on WebSocket (a
     * draining node sends its resume on to the other).
     */
    async person(nickname: string, at: { url: string }, options: ClientOptions = {}): Promise<Client> {
      const socket = connect<ServerEvents, ClientEvents>(at.url, {
        auth: { nickname },
        transports: ['websocket'],
        ...options,
      })
      clients.push(socket)
      return connected(socket)
    },

    /** A loopback proxy in front of `port` (a node's, or Redis'), that can go offline. */
    async proxy(port: number): Promise<TcpProxy> {
      const proxy = await startTcpProxy(port)
      proxies.push(proxy)
      return proxy
    },
  }
}
