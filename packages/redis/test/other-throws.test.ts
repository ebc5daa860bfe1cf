// A socket that throws at another node's broadcast as this node reads it on the channel loses
// that one alone: the other sockets (a second session being handed off, whose tail is the only
// place it gets it; another client of the node) still get it, and the next broadcast reaches
// both.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { unheard } from '../../../test/support/unheard.js'
import { until } from '../../server/test/helpers.js'
import { type FakeNode, fakeClusterSuite, message, to } from './handoff-support.js'
import { inbox, Nodes, redisSuite } from './nodes.js'
import { handedOff } from './throwing-session.js'

describe.skipIf(skipRedisSuites())("a socket that throws at another node's broadcast", () => {
  const suite = fakeClusterSuite()

  it('loses it alone: the other session gets it, and the next one reaches both', async () => {
    const [a, b] = (await suite.cluster().start(2)) as [FakeNode, FakeNode]
    // s1 first in room 'r': it is given the broadcast before s2.
    const first = await handedOff(a, 's1', 'sid-throws', 'one')
    const second = await handedOff(a, 's2', 'sid-takes')
    const left = await unheard(async () => {
      b.adapter.broadcast(message('news', ['one']), to(['r']))
      b.adapter.broadcast(message('news', ['two']), to(['r']))
      await until(() => second.includes('two') && first.includes('two'), 3000, 'the next broadcast at both')
    })
    expect(left).toEqual([])
    expect(second).toEqual(['one', 'two'])
    expect(first).toEqual(['two'])
    expect(a.warnings.filter((line) => line.includes('a broadcast failed at its delivery'))).toHaveLength(1)
    expect(a.warnings.filter((line) => line.includes('could not be handled'))).toEqual([])
  })
})

describe.skipIf(skipRedisSuites())("a server's socket that throws at another node's broadcast", () => {
  let nodes: Nodes | undefined
  const suite = redisSuite(() => nodes)

  it('loses it alone: the next client of the node gets it, and the next one reaches both', async () => {
    nodes = new Nodes()
    const [a, b] = await nodes.cluster(suite.redis.url, 2)
    const b0 = await nodes.client(b!)
    const b1 = await nodes.client(b!)
    // b0 first in room 'r': it is given the broadcast before b1.
    b0.socket.join('r')
    b1.socket.join('r')
    const first = inbox(b0.client)
    const second = inbox(b1.client)
    // The server's delivery to b0 throws, once: what a bug in it would do.
    const bug = new Error('a bug in the delivery')
    const socket = b0.socket as unknown as { deliver: () => void }
    socket.deliver = () => {
      delete (socket as { deliver?: unknown }).deliver
      throw bug
    }
    a!.app.parley.to('r').emit('news', 1)
    a!.app.parley.to('r').emit('news', 2)
    await until(() => second.length === 2 && first.length === 1, 5000, 'both broadcasts')
    expect(second).toEqual([1, 2])
    expect(first).toEqual([2])
    expect(b!.warned).toEqual([
      {
        message: '@parley/redis: a broadcast failed at its delivery to a socket, and is lost to its session',
        details: { err: bug, event: 'news', socket: b0.socket.id, times: 1 },
      },
    ])
  })
})
