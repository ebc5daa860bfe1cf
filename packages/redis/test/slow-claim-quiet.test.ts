// A drain whose claim takes longer than the client's connectTimeout: the draining node's seal of
// the tail is held back (Redis slow to answer that node), so the claiming node waits for it until
// its bound (SEAL_WAIT_MS, 3 s) before it answers the resume with OPEN. Real nodes on one Redis
// behind a round-robin balancer, and the real client on each transport, every transport allowed.
// Its application used to hear a `transport_error` PARLEY_HANDSHAKE_TIMEOUT for the try the claim
// outlasted, then one PARLEY_SERVER_SHUTTING_DOWN for each try that reached the claiming node
// before the session had arrived there (dozens at a fast backoff), each try stepping down to the
// next transport. Now it hears what it hears when the claim is quick.
import { connect } from '@parley/client'
import type { TransportName } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until } from '../../server/test/helpers.js'
import { balancedSuite, startTrafficNode, type TrafficNode } from './e2e-suite.js'
import { holding, isSeal } from './handoff-support.js'

/** Well below the claim's wait for the held seal (SEAL_WAIT_MS). */
const CONNECT_TIMEOUT = 1500

describe.skipIf(skipRedisSuites())('a resume whose claim outlasts connectTimeout', () => {
  const { suite, balance } = balancedSuite<TrafficNode>()
  const { nodes, clients } = suite

  it.each<TransportName>(['websocket', 'sse', 'polling'])(
    'tells the application nothing but the resume, on the same transport (%s)',
    async (transport) => {
      // a's seals wait until the test lets them go.
      let release = () => {}
      const released = new Promise<void>((resolve) => {
        release = resolve
      })
      let sealsHeld = 0
      const a = await startTrafficNode(suite.redis.url, nodes, {
        view: (client) =>
          holding(client, (args) => {
            if (!isSeal(args)) return undefined
            sealsHeld++
            return released.then(() => client.sendCommand(args))
          }),
      })
      const b = await startTrafficNode(suite.redis.url, nodes)
      const balancer = await balance([a, b])
      balancer.avoid.add(1)
      const all: TransportName[] = ['websocket', 'sse', 'polling']
      const c = connect(`${balancer.url}/parley`, {
        // Starting on `transport`, the others allowed after it; no climb meanwhile.
        transports: [...all.slice(all.indexOf(transport)), ...all.slice(0, all.indexOf(transport))],
        upgradeDelay: 60_000,
        connectTimeout: CONNECT_TIMEOUT,
        reconnectionDelay: 100,
        reconnectionDelayMax: 300,
      })
      clients.push(c)
      const said: string[] = []
      c.on('connect', () => said.push('connect'))
      c.on('transport', (now, before, why) => said.push(`${before} -> ${now} (${why})`))
      c.on('transport_error', (name, error) => said.push(`transport_error ${name} ${error.code}`))
      c.on('connect_error', (error) => said.push(`connect_error ${error.code}`))
      c.on('disconnect', (reason) => said.push(`disconnect ${reason}`))
      c.on('error', (error) => said.push(`error ${error.code}`))
      await until(() => c.connected && a.connections.length === 1, 3000, 'connect to a')
      expect(c.transport).toBe(transport)
      const id = c.id
      said.length = 0

      // a drains: the client resumes at b, whose claim waits for a's seal.
      balancer.avoid.clear()
      balancer.avoid.add(0)
      const drained = a.started.app.close()
      try {
        await until(() => b.restored.length === 1 && c.connected, 15_000, 'the resume at b')
        await until(() => said.some((line) => line.includes('->')), 5000, 'the transport event')
      } finally {
        release()
      }
      await drained
      expect(sealsHeld).toBeGreaterThan(0)
      expect(said).toEqual([`${transport} -> ${transport} (resume)`])
      expect(c.transport).toBe(transport)
      expect(c.id).toBe(id)
      expect(c.recovered).toBe(true)
    },
    30_000,
  )
})
