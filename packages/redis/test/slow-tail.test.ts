// A drain while Redis holds the draining node's commands for about a second (a failover, a fork
// for a snapshot, a loaded box), with real servers and the real client: what the node numbers
// for a handed-off session meanwhile waits in the node and reaches its tail once Redis answers,
// so the session resumes on another node with everything it was sent, nothing lost or doubled.
import { connect } from '@parley/client'
import type { TransportName } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { sleep, until } from '../../server/test/helpers.js'
import { balancedSuite, startTrafficNode, type TrafficNode } from './e2e-suite.js'
import { HeldInOrder, holding } from './handoff-support.js'

/** An append to a tail, as a node of any version sends it: a script that pushes onto a list. */
const isAppend = (args: string[]) => args[0] === 'EVAL' && args[1]?.includes("'RPUSH'") === true

describe.skipIf(skipRedisSuites())('a drain while Redis holds the draining node’s commands', () => {
  const { suite, balance } = balancedSuite<TrafficNode>()
  const { nodes, clients } = suite

  it.each<TransportName>(['websocket', 'polling'])(
    'resumes the session elsewhere with everything it was sent while Redis held them (%s)',
    async (transport) => {
      // From a's first append on, Redis holds every command of a's until the test lets them go.
      let held: HeldInOrder | undefined
      const sentByA: string[][] = []
      const a = await startTrafficNode(suite.redis.url, nodes, {
        // Well below the second Redis holds them: a drops nothing all the same.
        requestTimeout: 300,
        view: (client) => {
          held = new HeldInOrder(client, isAppend, () => true)
          return holding(client, (args) => {
            sentByA.push(args)
            return held!.hold(args)
          })
        },
      })
      const b = await startTrafficNode(suite.redis.url, nodes, { seen: true })
      const balancer = await balance([a, b])
      balancer.avoid.add(1)
      const c = connect(`${balancer.url}/parley`, {
        transports: [transport],
        reconnectionDelay: 100,
        reconnectionDelayMax: 300,
      })
      clients.push(c)
      const got: number[] = []
      c.on('n', (n: number) => got.push(n))
      await until(() => c.connected && a.connections.length === 1, 3000, 'connect to a')
      const id = c.id
      const socket = a.connections[0]!
      let sent = 0
      for (; sent < 5; ) socket.emit('n', ++sent)
      await until(() => got.length === 5, 3000, 'the first five')

      // The client can reach no node until the test says so; its resume goes to b then.
      balancer.avoid.clear()
      balancer.avoid.add(0)
      balancer.offline = true
      balancer.cut()
      await until(() => !c.connected, 5000, 'the client cut off')
      const drained = a.started.app.close()
      const isWrite = (args: string[]) =>
        args[0] === 'EVAL' && args[1]?.includes("'snapshot', ARGV[2]") === true
      await until(() => sentByA.some(isWrite), 5000, 'a hands the session off')
      // Numbered for the handed-off session: into its tail, every 20 ms for a second.
      const emitted = sent + 50
      while (sent < emitted) {
        socket.emit('n', ++sent)
        await sleep(20)
      }
      await until(() => (held?.held.length ?? 0) > 0, 3000, 'a’s commands held')
      await held!.runAll()
      balancer.offline = false

      await until(() => got.length >= sent && b.restored.length === 1, 10_000, 'every number, at b')
      await drained
      await sleep(100)
      expect(c.id).toBe(id)
      expect(c.recovered).toBe(true)
      expect(got).toEqual(Array.from({ length: sent }, (_, i) => i + 1))
      expect(a.warnings.filter((w) => w.includes('tail'))).toEqual([])
    },
    40_000,
  )
})
