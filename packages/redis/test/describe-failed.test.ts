// A node asked by another for its sockets (`fetchSockets`) that fails to describe one (a throw in
// the server's description: a bug, most likely) logs a warning coded as the adapter's other
// failure of a message read from another node, for an operator to search for; the node that asked
// counts it unanswered and goes on.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { Nodes, redisSuite } from './nodes.js'

describe.skipIf(skipRedisSuites())("sockets this node cannot describe for another's", () => {
  let nodes: Nodes | undefined
  const suite = redisSuite(() => nodes)

  it('logs it with PARLEY_REDIS_HANDLING_FAILED and its err', async () => {
    nodes = new Nodes()
    // A short wait for answers: b never answers the query.
    const [a, b] = await nodes.cluster(suite.redis.url, 2, { requestTimeout: 1000 })
    const b0 = await nodes.client(b!)
    // The server's description of that socket throws: what a bug in it would do.
    const bug = new Error('a bug in the description')
    const socket = b0.socket as unknown as { describe: () => void }
    socket.describe = () => {
      throw bug
    }

    const fetched = a!.app.parley.fetchSockets()
    await until(() => b!.warned.length > 0, 5000, "b's warning")
    expect(b!.warned).toEqual([
      {
        message: '@parley/redis: could not describe the sockets',
        details: { code: 'PARLEY_REDIS_HANDLING_FAILED', err: bug, times: 1 },
      },
    ])
    // Unanswered by b, a's query ends all the same.
    await within(fetched, 10_000, "a's fetchSockets")
  })
})
