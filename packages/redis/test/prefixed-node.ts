// A node of a suite's Redis with Parley at `/parley` under a Fastify prefix, as the suites of
// prefixes (with a parameter or without) start theirs.

import { type RedisAdapter, type RedisAdapterOptions, redisAdapter } from '@parley/redis'
import parley, { type ParleyServer, type ParleyServerOptions } from '@parley/server'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { createClient } from 'redis'
import { onTestFinished } from 'vitest'
import { closeApp, until } from '../../server/test/helpers.js'
import { HEARTBEAT } from './nodes.js'

export interface PrefixedNodeOptions {
  /** Fastify's own options, beside those every node has (its router's, say). */
  fastify?: FastifyServerOptions
  /** Parley's `handoff` option (none by default). */
  handoff?: ParleyServerOptions['handoff']
  /** The adapter's `log`. */
  log?: RedisAdapterOptions['log']
  /** The adapter's `address`: where the other nodes send this node's requests. */
  address?: string
  /**
   * The adapter's `prefix` (its default without): a test of its own keeps what nodes of the
   * tests before it left in Redis (owner and ended records, goodbye marks) away from it.
   */
  keyPrefix?: string
  /** Records in `routedTenants` the tenant of each request another node sent on here. */
  routed?: boolean
  /** Called with the node's Parley once registered, for its listeners. */
  serve?: (server: ParleyServer) => void
}

export interface PrefixedNode {
  app: FastifyInstance
  parley: ParleyServer
  adapter: RedisAdapter
  port: number
  /** The tenant of each request a node sent on here (`x-parley-routed`), in order. */
  routedTenants: string[]
}

/** A node under `prefix` on the Redis at `url`, ready, closed when the test ends. */
export async function prefixedNode(
  url: string,
  prefix: string,
  options: PrefixedNodeOptions = {},
): Promise<PrefixedNode> {
  const redis = createClient({ url })
  redis.on('error', () => {})
  await redis.connect()
  const app = Fastify({ ...options.fastify, forceCloseConnections: true })
  const routedTenants: string[] = []
  let server: ParleyServer | undefined
  await app.register(
    async (context) => {
      // The tenant as the router read it, for the requests another node sent on here.
      if (options.routed)
        context.addHook('onRequest', async (request) => {
          if (request.headers['x-parley-routed'] !== undefined)
            routedTenants.push((request.params as { tenant: string }).tenant)
        })
      await context.register(parley, {
        adapter: redisAdapter({
          client: redis,
          heartbeatInterval: HEARTBEAT,
          ...(options.log && { log: options.log }),
          ...(options.address !== undefined && { address: options.address }),
          ...(options.keyPrefix !== undefined && { prefix: options.keyPrefix }),
        }),
        handoff: options.handoff ?? false,
      })
      server = context.parley
      options.serve?.(server)
    },
    { prefix },
  )
  await app.listen({ port: 0, host: '127.0.0.1' })
  const adapter = server!.adapter as RedisAdapter
  await adapter.ready()
  onTestFinished(async () => {
    await closeApp(app)
    await adapter.close()
    if (redis.isOpen) redis.destroy()
  })
  const { port } = app.server.address() as { port: number }
  return { app, parley: server!, adapter, port, routedTenants }
}

/** Waits until each of two nodes sees the other live. */
export async function seeEachOther(
  a: { adapter: RedisAdapter },
  b: { adapter: RedisAdapter },
): Promise<void> {
  await until(
    () => a.adapter.liveNodes.length === 1 && b.adapter.liveNodes.length === 1,
    5000,
    'the nodes to see each other',
  )
}
