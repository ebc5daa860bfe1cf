// A socket that throws at a broadcast emitted on its node: the throw reaches the emit, as with the
// memory adapter, but the broadcast still crosses to the other nodes, and still comes back for
// the sockets of its node that take it then (a session being handed over), in order with the next.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until } from '../../server/test/helpers.js'
import { fakeClusterSuite, message, to } from './handoff-support.js'
import { handedOff } from './throwing-session.js'

describe.skipIf(skipRedisSuites())('a socket that throws at a broadcast emitted on its node', () => {
  const suite = fakeClusterSuite()

  it('throws at the emit, and the other nodes and a session being handed over still get it', async () => {
    const [a, b] = await suite.cluster().start(2)
    const thrower = a!.sockets.add('t')
    a!.adapter.addAll('t', ['t', 'r'])
    thrower.deliver = (event) => {
      if (event.args[0] === 'one') throw new Error('the socket threw at one')
      thrower.got.push(event.args[0])
    }
    // Positioned for its handover: it takes a's broadcasts when they come back on the channel.
    const tail = await handedOff(a!, 's1', 'sid-handed-off')
    const watcher = b!.sockets.add('w')
    b!.adapter.addAll('w', ['w', 'r'])

    expect(() => a!.adapter.broadcast(message('news', ['one']), to(['r']))).toThrow('the socket threw at one')
    a!.adapter.broadcast(message('news', ['two']), to(['r']))
    await until(() => watcher.got.includes('two'), 3000, "a's second broadcast at b")
    await until(() => tail.includes('two'), 3000, "a's second broadcast back at the session handed off")
    expect(watcher.got).toEqual(['one', 'two'])
    expect(tail).toEqual(['one', 'two'])
    expect(thrower.got).toEqual(['two'])
    expect(a!.adapter.stats.lostBroadcasts).toBe(0)
  })
})
