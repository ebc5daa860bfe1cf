// Nodes on one Redis and one adapter prefix whose Parley sits under other Fastify prefixes serve
// one `path` in two applications: each is told, as for another path. Prefixes whose parameters
// only differ in name (`/:tenant`, `/:org`) are one application's.

import type { RedisAdapter } from '@parley/redis'
import type { FastifyServerOptions } from 'fastify'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until } from '../../server/test/helpers.js'
import { redisSuite } from './nodes.js'
import { prefixedNode } from './prefixed-node.js'

interface PrefixedNode {
  adapter: RedisAdapter
  /** The adapter's warnings, in order. */
  warnings: string[]
}

const OTHER = 'give each application its own'

describe.skipIf(skipRedisSuites())('nodes of one adapter prefix under other Fastify prefixes', () => {
  const suite = redisSuite(() => undefined)

  /** A node with Parley at `/parley` under the Fastify prefix `prefix`, on the suite's Redis. */
  async function startNode(prefix: string, fastify?: FastifyServerOptions): Promise<PrefixedNode> {
    const warnings: string[] = []
    const { adapter } = await prefixedNode(suite.redis.url, prefix, {
      log: { warn: (_details, message) => void warnings.push(message) },
      ...(fastify && { fastify }),
    })
    return { adapter, warnings }
  }

  const told = (node: PrefixedNode) => node.warnings.filter((warning) => warning.includes(OTHER))

  it('warns each node of the other prefix, naming both', async () => {
    const a = await startNode('/a')
    const b = await startNode('/b')
    await until(() => told(a).length === 1 && told(b).length === 1, 5000, 'the warnings')
    expect(told(a)[0]).toContain('serves Parley at "/b/parley", this node at "/a/parley"')
    expect(told(b)[0]).toContain('serves Parley at "/a/parley", this node at "/b/parley"')
  })

  it('reads prefixes whose parameters differ only in name as one, and others as another', async () => {
    const tenant = await startNode('/:tenant')
    const org = await startNode('/:org')
    const deeper = await startNode('/:tenant/x')
    await until(
      () => told(tenant).length > 0 && told(org).length > 0 && told(deeper).length === 1,
      5000,
      'the warnings of the deeper prefix',
    )
    // The deeper one is told once, of one other route: both the others serve it.
    expect(told(deeper)[0]).toContain('serves Parley at "/:/parley", this node at "/:/x/parley"')
    for (const node of [tenant, org]) {
      expect(told(node)).toHaveLength(1)
      expect(told(node)[0]).toContain('serves Parley at "/:/x/parley", this node at "/:/parley"')
    }
  })

  it('reads prefixes that differ only in letter case as one where the router ignores it', async () => {
    const anyCase = { routerOptions: { caseSensitive: false } }
    const upper = await startNode('/Acme', anyCase)
    const lower = await startNode('/acme', anyCase)
    // Started last: a node told of it has read the notes of those before it.
    const other = await startNode('/b')
    await until(
      () => [upper, lower].every((node) => told(node).some((warning) => warning.includes('"/b/parley"'))),
      5000,
      'the warnings of the other application',
    )
    expect([told(upper), told(lower)].map((warnings) => warnings.length)).toEqual([1, 1])
    // The one whose router reads letter case as written is told of both.
    await until(() => told(other).length === 2, 5000, 'the warnings of the node that reads case')
    expect(told(other).join('\n')).toContain('"/Acme/parley"')
    expect(told(other).join('\n')).toContain('"/acme/parley"')
  })
})
