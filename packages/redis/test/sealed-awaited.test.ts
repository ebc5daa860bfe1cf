// A drain that nobody claims before its timeout, and whose adapter asks no live node to adopt
// what is left (no `askAdoption`), seals its sessions' tails; the client resumes
// later on another node, which takes the session over from that tail. Own broadcasts of the
// drained node that the session still waits for must reach the client there all the same: into
// the tail before its last packets, in order, once. Those given up while the session was handed
// over (Redis may have run them: see src/awaited.ts), and one emitted as the drain seals, not
// back from Redis yet (the session was left out of it when it was emitted). Real servers, the
// real client, real Redis.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { adapterOf, balancedSuite, roomClientOn, startTrafficNode, type TrafficNode } from './e2e-suite.js'
import { HeldBroadcast } from './held-broadcast.js'

const REQUEST_TIMEOUT = 300

describe.skipIf(skipRedisSuites())('a drain that seals a session nobody claimed', () => {
  const { suite, balance } = balancedSuite<TrafficNode>()
  const { nodes, clients } = suite

  it('gives the client, resumed elsewhere, the broadcasts its session waited for: in order, once', async () => {
    // a's next broadcast PUBLISH is held unanswered; its notes to itself (the probe that proves
    // such a broadcast never ran) are lost until its drain stops waiting for claims, as when
    // the one sent every requestTimeout is not back yet when the drain ends.
    const given = new HeldBroadcast()
    const a = await startTrafficNode(suite.redis.url, nodes, {
      requestTimeout: REQUEST_TIMEOUT,
      handoffTimeout: 1500,
      view: given.view,
      fastify: { return503OnClosing: false },
      adopts: false,
      // The drain stops waiting for claims.
      settling: () => {
        given.loseProbes = false
      },
    })
    const b = await startTrafficNode(suite.redis.url, nodes, { seen: true })
    const balancer = await balance([a, b])
    balancer.avoid.add(1)
    const { client, got } = await roomClientOn(balancer, a, clients)
    const disconnects: string[] = []
    client.on('disconnect', (reason: string) => disconnects.push(reason))
    const id = client.id

    a.started.app.parley.to('room').emit('room', 1)
    await until(() => got.length === 1, 3000, 'the first broadcast')

    // The network goes: the client cannot resume anywhere until a's drain is over.
    balancer.offline = true
    const draining = a.started.app.close()
    await until(() => adapterOf(a).handingOver === 1, 3000, 'the session handed off')

    // 2 is given up unanswered (Redis may still run it): the session waits for it. 3, while
    // Redis is silent, is never sent, and waits behind it.
    await given.giveUp(a, 2, () => a.started.app.parley.to('room').emit('room', 3))
    // Redis answers again; it never ran 2.
    given.held?.answer(0)

    // Nobody claims the session: the drain seals its tail at its timeout, and a closes.
    await within(draining, 8000, "a's drain over")
    balancer.avoid.clear()
    balancer.avoid.add(0)
    balancer.offline = false
    await until(() => b.restored.length === 1, 8000, 'the session taken over by b')
    b.started.app.parley.to('room').emit('room', 4)
    await until(() => got.includes(4), 3000, "b's broadcast")

    expect(got).toEqual([1, 2, 3, 4])
    expect(client.recovered).toBe(true)
    expect(client.id).toBe(id)
    expect(disconnects).toEqual([])
  }, 35_000)

  it('gives the client, resumed elsewhere, a broadcast emitted as the drain seals, still on its way', async () => {
    let emitAtSeal: (() => void) | undefined
    const a = await startTrafficNode(suite.redis.url, nodes, {
      handoffTimeout: 1000,
      fastify: { return503OnClosing: false },
      adopts: false,
      // The drain stops waiting for claims, and settles the session before its seal.
      settling: () => emitAtSeal?.(),
    })
    const b = await startTrafficNode(suite.redis.url, nodes, { seen: true })
    const balancer = await balance([a, b])
    balancer.avoid.add(1)
    const { client, got } = await roomClientOn(balancer, a, clients)
    a.started.app.parley.to('room').emit('room', 1)
    await until(() => got.length === 1, 3000, 'the first broadcast')

    // The network goes; a drains. As it stops waiting for claims it emits 2: its PUBLISH goes,
    // and the session, left out of it, takes it only once it comes back from Redis.
    balancer.offline = true
    emitAtSeal = () => a.started.app.parley.to('room').emit('room', 2)
    const draining = a.started.app.close()
    await until(() => adapterOf(a).handingOver === 1, 3000, 'handed off')
    await within(draining, 8000, "a's drain over")

    balancer.avoid.clear()
    balancer.avoid.add(0)
    balancer.offline = false
    await until(() => b.restored.length === 1, 8000, 'the session taken over by b')
    b.started.app.parley.to('room').emit('room', 3)
    await until(() => got.includes(3), 3000, "b's broadcast")
    expect(got).toEqual([1, 2, 3])
    expect(client.recovered).toBe(true)
  }, 30_000)
})
