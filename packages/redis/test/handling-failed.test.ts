// A message of another node, well formed, that fails in this node as it is handled (the server
// it calls throws: a bug, most likely) is dropped with a coded warning, for an operator to search
// for as for a malformed one, and the node goes on to handle the next. Here a request to
// disconnect sockets, whose disconnect of a socket of this node throws once. (A broadcast whose
// delivery to one socket throws costs that socket alone: see other-throws.test.ts.)
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until } from '../../server/test/helpers.js'
import { inbox, Nodes, redisSuite } from './nodes.js'

describe.skipIf(skipRedisSuites())('a message from another node that fails as it is handled', () => {
  let nodes: Nodes | undefined
  const suite = redisSuite(() => nodes)

  it('is logged with PARLEY_REDIS_HANDLING_FAILED and its err, and the next one is handled', async () => {
    nodes = new Nodes()
    const [a, b] = await nodes.cluster(suite.redis.url, 2)
    const b0 = await nodes.client(b!)
    b0.socket.join('r')
    const got = inbox(b0.client)
    // The server's disconnect of that socket throws, once: what a bug in it would do.
    const bug = new Error('a bug in the disconnect')
    const socket = b0.socket as unknown as { disconnect: () => void }
    socket.disconnect = () => {
      delete (socket as { disconnect?: unknown }).disconnect
      throw bug
    }

    // Not awaited: it waits for b's answer, which the failure drops.
    void a!.app.parley.in('r').disconnectSockets()
    await until(() => b!.warnings.length > 0, 5000, "b's warning")
    expect(b!.warned).toEqual([
      {
        message: '@parley/redis: a message from another node could not be handled',
        details: { code: 'PARLEY_REDIS_HANDLING_FAILED', err: bug, times: 1 },
      },
    ])
    a!.app.parley.to('r').emit('news', 2)
    await until(() => got.length > 0, 5000, 'the next broadcast')
    expect(got).toEqual([2])
  })
})
