// A session handed over waits for an own broadcast of its old node given up unanswered (Redis
// may still run it, see src/awaited.ts), and for one never sent behind it; then another node's
// claim marker comes back before anything proved the first never ran. That broadcast was emitted
// while the session was the old node's and never reached the channel: no claimer reads it. The
// old node holds its seal until its note to itself says (within a bound below the claimer's
// wait), so that the session gets both, in order, once, from the tail. Real servers, the real
// client, real Redis.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import type { RedisAdapter } from '../src/index.js'
import { balancedSuite, roomClientOn, startTrafficNode, type TrafficNode } from './e2e-suite.js'
import { holding } from './handoff-support.js'
import { HeldBroadcast } from './held-broadcast.js'

const REQUEST_TIMEOUT = 300

describe.skipIf(skipRedisSuites())('a claim marker back before an awaited broadcast was settled', () => {
  const { suite, balance } = balancedSuite<TrafficNode>()
  const { nodes, clients } = suite

  it.each([
    ['never runs: the tail holds it, in order', 'never', [1, 2, 3, 4]],
    // Run past the marker, it is the claimer's: after 3, which went into the tail, but once.
    ['runs after the marker: the claimer delivers it, and the tail does not hold it', 'late', [1, 3, 2, 4]],
  ] as const)(
    'when that broadcast %s',
    async (_, fate, expected) => {
      // a's next broadcast PUBLISH is held unanswered; its notes to itself (the probe that proves
      // such a broadcast never ran) are lost until Redis has run b's claim marker: the first one
      // to come back then comes back behind that marker. Or the held one runs then, and they stay
      // lost: what settles it is its own return.
      const given = new HeldBroadcast()
      let markerRan = false
      const a = await startTrafficNode(suite.redis.url, nodes, {
        requestTimeout: REQUEST_TIMEOUT,
        view: given.view,
      })
      const b = await startTrafficNode(suite.redis.url, nodes, {
        seen: true,
        view: (client) =>
          holding(client, (args) => {
            if (args[0] !== 'PUBLISH' || !(args[2] ?? '').includes('"k":"claim"')) return undefined
            const ran = client.sendCommand(args)
            void ran.then(() => {
              markerRan = true
              given.loseProbes = fate === 'late'
            })
            return ran
          }),
      })
      const balancer = await balance([a, b])
      balancer.avoid.add(1)
      const { client, got } = await roomClientOn(balancer, a, clients)
      const adapter = a.started.app.parley.adapter as RedisAdapter
      a.started.app.parley.to('room').emit('room', 1)
      await until(() => got.length === 1, 3000, 'the first broadcast')

      // The network goes; a drains and hands the session over.
      balancer.offline = true
      const draining = a.started.app.close()
      await until(() => adapter.handingOver === 1, 3000, 'the session handed off')

      // 2 is given up unanswered: the session waits for it. 3, while Redis is silent, is never
      // sent, and waits behind it.
      await given.giveUp(a, 2, () => a.started.app.parley.to('room').emit('room', 3))
      // Redis answers again; it never ran 2, or runs it once it has run b's marker.
      if (fate === 'never') given.held?.answer(0)

      // The client comes back, on b, which claims the session: its marker comes back to a first.
      balancer.avoid.clear()
      balancer.avoid.add(0)
      balancer.offline = false
      if (fate === 'late') {
        await until(() => markerRan, 8000, "b's marker run")
        const { held } = given
        held?.answer(await a.redis.sendCommand(held.args))
      }
      await until(() => b.restored.length === 1, 8000, 'the session taken over by b')
      b.started.app.parley.to('room').emit('room', 4)
      await until(() => got.includes(4), 3000, "b's broadcast")
      await within(draining, 8000, "a's drain over")

      expect(got).toEqual(expected)
      expect(client.recovered).toBe(true)
    },
    45_000,
  )
})
