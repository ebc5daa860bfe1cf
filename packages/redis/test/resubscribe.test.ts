// Redis delivers pub/sub messages at most once: a node's own broadcast PUBLISHed while only its
// subscriber connection is down is taken by Redis and never comes back to it. A socket that
// waits for its node's own broadcasts to come back (a session taken over, see cut.ts) must not
// wait for that one.
import { prepareEvent } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until } from '../../server/test/helpers.js'
import { fakeClusterSuite, message, to, won } from './handoff-support.js'
import { handedOffBeside, subscriberBack } from './resubscribe-scene.js'

describe.skipIf(skipRedisSuites())('a subscriber that reconnects alone', () => {
  const suite = fakeClusterSuite()

  it('settles its own broadcasts sent meanwhile: a socket it takes over is released without another', async () => {
    const sid = 'sid-gap'
    const { a, b, bSubscriber, watch } = await handedOffBeside(suite.cluster(), sid)

    // b's subscriber is cut, and b broadcasts behind the cut on its own connection: Redis runs
    // both in a row, before the subscriber can even connect again. Redis takes b0; b never
    // hears it back.
    const killed = b.redis.sendCommand(['CLIENT', 'KILL', 'ID', bSubscriber])
    b.adapter.broadcast(message('news', ['b0']), to(['r']))
    expect(await killed).toBe(1)
    await subscriberBack(a, watch)

    const claim = won(await b.adapter.claimSession(sid))
    const taken = b.sockets.add('s1', sid)
    await claim.takeOver(() => b.adapter.addAll('s1', ['s1', 'r']))
    // b0 is not on its way any more: the socket is released, and takes b's broadcasts when
    // emitted, so b1 comes before what b sends it directly after.
    await until(() => b.adapter.handingOver === 0, 3000, 'the taken-over socket released')
    b.adapter.broadcast(message('news', ['b1']), to(['r']))
    taken.deliver(prepareEvent('direct', ['d']))
    expect(taken.got).toEqual(['b1', 'd'])
  })

  it('settles them also when its subscriber is back before the connection it broadcasts on', async () => {
    const sid = 'sid-both'
    const { a, b, bSubscriber, watch } = await handedOffBeside(suite.cluster(), sid)

    // As above; then b's own connection is down too, from right after b0 until b hears the
    // channel again (Redis restarting: either connection may come back first).
    const killed = b.redis.sendCommand(['CLIENT', 'KILL', 'ID', bSubscriber])
    b.adapter.broadcast(message('news', ['b0']), to(['r']))
    b.down = true
    expect(await killed).toBe(1)
    await subscriberBack(a, watch)
    b.down = false

    const claim = won(await b.adapter.claimSession(sid))
    b.sockets.add('s1', sid)
    await claim.takeOver(() => b.adapter.addAll('s1', ['s1', 'r']))
    await until(() => b.adapter.handingOver === 0, 3000, 'the taken-over socket released')
  })
})
