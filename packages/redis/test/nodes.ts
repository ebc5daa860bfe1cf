// Several Parley nodes in one process, each a Fastify app on 127.0.0.1 with its own node-redis
// client and a Redis adapter, all joined by one throwaway Redis. A test owns its nodes and
// closes them (`closeAll`).
import { connect, type Socket } from '@parley/client'
import { type RedisAdapter, type RedisAdapterOptions, redisAdapter } from '@parley/redis'
import type { ParleyServerOptions, ServerSocket } from '@parley/server'
import type { FastifyServerOptions } from 'fastify'
import { createClient, RESP_TYPES } from 'redis'
import { afterAll, afterEach, beforeAll } from 'vitest'
import { type RedisServer, startRedis } from '../../../test/support/redis-server.js'
import { type Started, startServer, until } from '../../server/test/helpers.js'
import type { RawClient } from '../../server/test/raw-client.js'

const redisClient = (url: string) => createClient({ url })
export type RedisClientType = ReturnType<typeof redisClient>

export interface TestNode extends Started {
  adapter: RedisAdapter
  redis: RedisClientType
  /** Every socket that connected to this node, in order. */
  sockets: ServerSocket[]
  /** What the adapter logged at warn. */
  warnings: string[]
  /** The same warnings with the details logged beside each (its `err`, `code`, ...). */
  warned: { message: string; details: Record<string, unknown> }[]
  /** Errors the node's own Redis client reported (Redis went away). */
  clientErrors: Error[]
}

/**
 * The hooks a suite of several nodes shares: one throwaway Redis for the file (`redis`, once
 * started), and after each test the raw clients in `raws` closed, then the test's nodes.
 */
export function redisSuite(nodes: () => Nodes | undefined): {
  readonly redis: RedisServer
  readonly raws: RawClient[]
} {
  let redis: RedisServer | undefined
  const raws: RawClient[] = []
  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => {
    await redis?.stop()
  })
  afterEach(async () => {
    for (const raw of raws.splice(0)) raw.close()
    await nodes()?.closeAll()
  })
  return {
    get redis() {
      if (!redis) throw new Error('Redis is not started yet (beforeAll)')
      return redis
    },
    raws,
  }
}

/** Heartbeats in tests: fast enough that a dead node drops out within a couple of seconds. */
export const HEARTBEAT = 300

/** How long a node's start may take to be ready, on a loaded machine included. */
const READY_WITHIN_MS = 5000

/** Between two `ready()` calls, so that the retries leave the event loop to the adapter. */
const READY_RETRY_MS = 20

/**
 * Resolves once `adapter` is ready, within `ms`. A single `ready()` gives up after the adapter's
 * `requestTimeout` (300 ms in some suites), which a loaded machine can take before the first
 * heartbeat goes through; the adapter keeps trying, and a later `ready()` resolves once it has.
 */
async function readyWithin(adapter: RedisAdapter, ms: number): Promise<void> {
  const end = performance.now() + ms
  for (;;) {
    try {
      await adapter.ready()
      return
    } catch (err) {
      if (performance.now() > end) throw err
      await new Promise((resolve) => setTimeout(resolve, READY_RETRY_MS))
    }
  }
}

export class Nodes {
  readonly list: TestNode[] = []
  readonly #clients: Socket[] = []

  /** Starts a node whose adapter talks to the Redis at `url`; resolves once it is subscribed. */
  async start(
    url: string,
    options: Partial<RedisAdapterOptions> = {},
    /** Hand the adapter a view of the client that reads bulk strings as Buffers. */
    buffers = false,
    /**
     * The server's own options. No drain with handoff by default: these tests close nodes with
     * clients still on them, which a drain would wait for (test/cluster tests the handoff).
     */
    server: ParleyServerOptions = { handoff: false },
    /** Fastify's own options (a logger to read the server's lines, say). */
    fastify: FastifyServerOptions = {},
  ): Promise<TestNode> {
    const redis = redisClient(url)
    const clientErrors: Error[] = []
    redis.on('error', (err: Error) => clientErrors.push(err))
    await redis.connect()
    const client = buffers ? redis.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer }) : redis
    const warnings: string[] = []
    const warned: TestNode['warned'] = []
    const sockets: ServerSocket[] = []
    const started = await startServer(
      {
        ...server,
        adapter: redisAdapter({
          client,
          heartbeatInterval: HEARTBEAT,
          log: {
            warn: (details, message) => {
              warnings.push(message)
              warned.push({ message, details })
            },
          },
          ...options,
        }),
      },
      (app) => {
        app.parley.on('connection', (socket) => {
          sockets.push(socket)
        })
      },
      fastify,
    )
    const adapter = started.app.parley.adapter as RedisAdapter
    const node = { ...started, adapter, redis, sockets, warnings, warned, clientErrors }
    // Listed before it is ready: a node whose start fails here is still closed by `closeAll`.
    // Left running, it went on beating, and the next test's nodes saw one live node too many.
    this.list.push(node)
    await readyWithin(adapter, READY_WITHIN_MS)
    return node
  }

  /** `count` nodes that all see each other live. */
  async cluster(url: string, count = 3, options: Partial<RedisAdapterOptions> = {}): Promise<TestNode[]> {
    const nodes: TestNode[] = []
    for (let i = 0; i < count; i++) nodes.push(await this.start(url, options))
    await until(() => nodes.every((n) => n.adapter.liveNodes.length === count - 1), 5000, 'live nodes')
    return nodes
  }

  /** A client of `node` on WebSocket; resolves once the node has its socket. */
  async client(node: TestNode): Promise<{ client: Socket; socket: ServerSocket }> {
    const before = node.sockets.length
    const client = connect(node.base, { transports: ['websocket'], reconnection: false })
    this.#clients.push(client)
    await until(() => node.sockets.length === before + 1 && client.connected, 3000, 'client')
    return { client, socket: node.sockets[before]! }
  }

  /** Closes a node: its server, its adapter, then its Redis client. */
  async stop(node: TestNode): Promise<void> {
    const index = this.list.indexOf(node)
    if (index >= 0) this.list.splice(index, 1)
    await node.app.close()
    await node.adapter.close()
    if (node.redis.isOpen) node.redis.destroy()
  }

  async closeAll(): Promise<void> {
    for (const client of this.#clients.splice(0)) client.disconnect()
    await Promise.all([...this.list].map((node) => this.stop(node)))
  }
}

/** Collects the values of `event` that `client` receives. */
export function inbox(client: Socket, event = 'news'): unknown[] {
  const got: unknown[] = []
  client.on(event, (value: unknown) => got.push(value))
  return got
}
