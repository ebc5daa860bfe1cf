// Two sessions handed over by a draining node wait for its own broadcast given up unanswered
// (Redis may still run it, see src/awaited.ts), and for a broadcast with acks never sent behind
// it. One is claimed first: at its marker it is asked the question, into its tail. The other,
// still waiting, must not be asked then, ahead of the broadcast: it takes both in the order they
// were emitted, as every other socket of the node did. Real servers, real clients, real Redis.
import { connect, type Socket } from '@parley/client'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import type { RoundRobinProxy } from '../../../test/support/round-robin.js'
import { until, within } from '../../server/test/helpers.js'
import type { RedisAdapter } from '../src/index.js'
import { balancedSuite, startTrafficNode, type TrafficNode } from './e2e-suite.js'
import { HeldBroadcast } from './held-broadcast.js'

const REQUEST_TIMEOUT = 300

/** A client of the nodes behind `balancer`, and what it got: `room` broadcasts, `ask` questions. */
async function clientOf(balancer: RoundRobinProxy, clients: Socket[]) {
  const client = connect(`${balancer.url}/parley`, {
    transports: ['websocket'],
    reconnectionDelay: 100,
    reconnectionDelayMax: 300,
  })
  clients.push(client)
  const got: string[] = []
  client.on('room', (n: number) => got.push(`room ${n}`))
  client.on('ask', (n: number, reply: (answer: string) => void) => {
    got.push(`ask ${n}`)
    reply('ok')
  })
  await until(() => client.connected, 3000, 'connected')
  return { client, got }
}

describe.skipIf(skipRedisSuites())(
  'a question given up behind a broadcast two handed-over sessions wait for',
  () => {
    const { suite, balance } = balancedSuite<TrafficNode>()
    const { nodes, clients } = suite

    it('is asked of each session after that broadcast, though the other was claimed first', async () => {
      // a's next broadcast PUBLISH is held unanswered; its notes to itself (the probe that proves
      // such a broadcast never ran) are lost until the test lets them through.
      const given = new HeldBroadcast()
      const a = await startTrafficNode(suite.redis.url, nodes, {
        requestTimeout: REQUEST_TIMEOUT,
        handoffTimeout: 4000,
        view: given.view,
      })
      const b = await startTrafficNode(suite.redis.url, nodes, { seen: true })
      // Each client through a balancer of its own: one comes back while the other cannot.
      const first = await balance([a, b])
      const second = await balance([a, b])
      first.avoid.add(1)
      second.avoid.add(1)
      const one = await clientOf(first, clients)
      const two = await clientOf(second, clients)
      await until(() => a.connections.length === 2, 3000, 'both on a')
      const adapter = a.started.app.parley.adapter as RedisAdapter

      // The network goes for both; a drains, and hands both sessions over.
      first.offline = true
      second.offline = true
      const draining = a.started.app.close()
      await until(() => adapter.handingOver === 2, 3000, 'both handed off')

      // 1 is given up unanswered: both sessions wait for it. The question, never sent while Redis
      // is silent, waits behind it.
      await given.giveUp(a, 1, () => {
        const asked = a.started.app.parley.timeout(5000).to('room').emitWithAck('ask', 2)
        asked.catch(() => {})
      })
      // Redis answers again; it never ran 1.
      given.held?.answer(0)

      // The first client comes back, on b: its claim's marker seals its tail on a.
      first.avoid.clear()
      first.avoid.add(0)
      first.offline = false
      await until(() => b.restored.length === 1, 8000, 'the first session taken over by b')
      // Then the probe proves 1 never ran: the second session takes it, then the question.
      given.loseProbes = false
      await within(draining, 8000, "a's drain over")
      second.avoid.clear()
      second.avoid.add(0)
      second.offline = false
      await until(() => b.restored.length === 2, 8000, 'the second session taken over by b')
      await until(() => two.got.length === 2, 3000, 'what the second session waited for')

      // The first was asked at its marker; 1, never run, reaches it nowhere (see the README).
      expect(one.got).toEqual(['ask 2'])
      expect(two.got).toEqual(['room 1', 'ask 2'])
      expect(one.client.recovered && two.client.recovered).toBe(true)
    }, 45_000)
  },
)
