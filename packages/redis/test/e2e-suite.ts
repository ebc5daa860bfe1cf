// The frame of the end-to-end suites: Parley servers, each with its own node-redis client, on
// one throwaway Redis, and the real client. A suite owns its nodes and clients; the hooks here
// close them after each test.
import type { Socket } from '@parley/client'
import { createClient } from 'redis'
import { afterAll, afterEach, beforeAll } from 'vitest'
import { type RedisServer, startRedis } from '../../../test/support/redis-server.js'
import { type Started, sleep } from '../../server/test/helpers.js'
import type { RedisClientType } from './nodes.js'

/** What every node of such a suite has: its server and its own Redis client. */
export interface SuiteNode {
  started: Started
  redis: RedisClientType
}

/**
 * Starts Redis once for the file; after each test disconnects the clients in `clients`, runs
 * `beforeNodes` (the suite closes its balancer there), closes every node in `nodes` and drops
 * its Redis client, then runs `afterNodes`.
 */
export function endToEndSuite<N extends SuiteNode>(
  hooks: { beforeNodes?: () => Promise<void>; afterNodes?: () => Promise<void> } = {},
): { readonly redis: RedisServer; readonly nodes: N[]; readonly clients: Socket[] } {
  let redis: RedisServer | undefined
  const nodes: N[] = []
  const clients: Socket[] = []
  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => {
    await redis?.stop()
  })
  afterEach(async () => {
    for (const c of clients.splice(0)) c.disconnect()
    await sleep(50)
    await hooks.beforeNodes?.()
    await Promise.all(nodes.splice(0).map(stopNode))
    await hooks.afterNodes?.()
  })
  return {
    get redis() {
      if (!redis) throw new Error('Redis is not started yet (beforeAll)')
      return redis
    },
    nodes,
    clients,
  }
}

/** Closes `node`'s server (a drain, with handoff) unless closed, then drops its Redis client. */
async function stopNode(node: SuiteNode): Promise<void> {
  if (!node.started.app.parley.closed) await node.started.app.close()
  if (node.redis.isOpen) node.redis.destroy()
}

/** A node-redis client connected to `url`; its errors (Redis going away) are the adapter's to report. */
export async function connectedClient(url: string): Promise<RedisClientType> {
  const client = createClient({ url })
  client.on('error', () => {})
  await client.connect()
  return client
}
