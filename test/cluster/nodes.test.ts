// startNode picks a free port, lets it go, then the node process binds it: another test file
// can take the port in between. The start must then move to another port and hand back its own
// node; a restart, on the other hand, waits for its old process's port and takes it over.
import http from 'node:http'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { freePort } from '../support/ports.js'
import { type RedisServer, skipRedisSuites, startRedis } from '../support/redis-server.js'
import { type ClusterNode, startNode } from './nodes.js'

/**
 * Each test starts node processes (the first also compiles node.ts): a start loads a bundle of
 * Fastify, node-redis and Parley, which took 7 to 11 s on two cores at a load average of 12, and
 * startNode allows it 40 s. The limit of the other cluster suites, 60 s, rather than Vitest's 20.
 */
const START_TEST_MS = 60_000

describe.skipIf(skipRedisSuites())('startNode', () => {
  let redis: RedisServer
  const nodes: ClusterNode[] = []
  let other: http.Server | undefined

  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => {
    await redis?.stop()
  })
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((n) => n.kill()))
    other?.closeAllConnections()
    await new Promise((resolve) => other?.close(resolve) ?? resolve(undefined))
    other = undefined
  })

  /** The node's own answer to GET /cluster: its name. */
  async function nameAt(url: string): Promise<string> {
    return ((await (await fetch(`${url}/cluster`)).json()) as { node: string }).node
  }

  it(
    'moves to another port when another server took the one it picked',
    async () => {
      let hits = 0
      other = http.createServer((_req, res) => {
        hits++
        res.end(JSON.stringify({ node: 'another server' }))
      })
      await new Promise<void>((resolve) => other?.listen(0, '127.0.0.1', resolve))
      const taken = (other.address() as { port: number }).port
      const picked: number[] = []
      const node = await startNode('n1', redis.url, {
        pickPort: async () => {
          const port = picked.length === 0 ? taken : await freePort()
          picked.push(port)
          return port
        },
      })
      nodes.push(node)
      expect(picked[0]).toBe(taken)
      expect(node.port).not.toBe(taken)
      expect(await nameAt(node.url)).toBe('n1')
      expect(hits).toBe(0)
    },
    START_TEST_MS,
  )

  it(
    'restarts on the port of the node it replaces, once that one has closed',
    async () => {
      const old = await startNode('n1', redis.url)
      nodes.push(old)
      let ready: () => void = () => {}
      const loaded = new Promise<void>((resolve) => {
        ready = resolve
      })
      const next = startNode('n1', redis.url, { port: old.port, onReady: ready })
      await loaded
      await old.stop()
      const node = await next
      nodes.push(node)
      expect(node.port).toBe(old.port)
      expect(node.pid).not.toBe(old.pid)
      expect(await nameAt(node.url)).toBe('n1')
    },
    START_TEST_MS,
  )
})
