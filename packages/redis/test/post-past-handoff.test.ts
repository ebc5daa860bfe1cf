// A POST that the old node of a handed-off session answers 204 and uses none of, after its client
// has already resumed on the node that took the session over. The old node held the session
// frozen still (it never heard the claim: its link to Redis froze right after it stored the
// snapshot, and the claimer, no longer seeing it live, did not wait for its seal), and a
// frozen session's POST is answered 204 there, its packets left to the client's next resume.
// But that resume had come already: the client took the 204 for delivery, and the next node read
// every packet after the lost ones as past a gap. Dropping them silently, it kept the SSE stream
// and the heartbeat alive while none of the client's events reached the application.
import { connect } from '@parley/client'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { startTcpProxy, type TcpProxy } from '../../../test/support/tcp-proxy.js'
import { until } from '../../server/test/helpers.js'
import { balancedSuite, seesOthers, startTrafficNode } from './e2e-suite.js'

describe.skipIf(skipRedisSuites())(
  'a POST lost at the old node after the client resumed on the new one',
  () => {
    let link: TcpProxy | undefined
    const { suite, balance } = balancedSuite({
      afterNodes: async () => {
        await link?.close()
        link = undefined
      },
    })
    const { nodes, clients } = suite

    it('has the client send it again: the events after it are handled, none lost, none twice', async () => {
      // a reaches Redis through a link the test freezes.
      link = await startTcpProxy(suite.redis.port)
      const a = await startTrafficNode(`redis://127.0.0.1:${new URL(link.url).port}`, nodes)
      const b = await startTrafficNode(suite.redis.url, nodes)
      // a's link freezes once the snapshot is stored: a hands the session off, and hears no claim.
      // How many other nodes a takes for alive then is what its drain reads next (nothing reaches
      // it afterwards): none, and it seals the session at once and ends it.
      const adapter = a.started.app.parley.adapter
      const handOff = adapter.handOff!.bind(adapter)
      let othersAtStore: number | undefined
      adapter.handOff = async (snapshot, ttl) => {
        const stored = await handOff(snapshot, ttl)
        othersAtStore = adapter.otherNodes?.()
        link?.freeze()
        return stored
      }
      const balancer = await balance([a, b])
      balancer.avoid.add(1)
      const c = connect(`${balancer.url}/parley`, { transports: ['sse'] })
      clients.push(c)
      const events: string[] = []
      c.on('disconnect', (reason: string) => events.push(`disconnect ${reason}`))
      await until(() => c.connected, 3000, 'connected to a')
      const id = c.id
      c.emit('up', 1)
      await until(() => a.received.length === 1, 3000, 'the first event, on a')
      const endedOnA: string[] = []
      a.connections[0]?.on('disconnect', (reason: string) => endedOnA.push(reason))

      // a drains: the client resumes on b, while a still holds the session frozen. Only once a
      // has read b's first heartbeat (or heard it join), which nothing before waits for: a
      // drain that finds no other node alive seals at once, and the session ends there.
      await seesOthers(a)
      balancer.avoid.clear()
      balancer.avoid.add(0)
      const draining = a.started.app.close()
      await until(() => b.restored.length === 1 && c.connected, 8000, 'resumed on b')
      // Why it would not be frozen: a second session on a, no other node alive as a stored the
      // snapshot, or the session ended there (and how).
      expect({ sessionsOnA: a.connections.length, othersAtStore, endedOnA }).toEqual({
        sessionsOnA: 1,
        othersAtStore: 1,
        endedOnA: [],
      })
      expect(a.connections[0]!.session.state).toBe('frozen')

      // The next POST reaches a, which answers it 204 and uses none of it; the one after, b.
      balancer.avoid.clear()
      balancer.avoid.add(1)
      const toA = balancer.forwarded[0]!
      c.emit('up', 2)
      await until(() => balancer.forwarded[0]! > toA, 3000, 'the POST to a')
      balancer.avoid.clear()
      balancer.avoid.add(0)
      c.emit('up', 3)

      await until(() => b.received.length >= 2, 5000, 'the events after the lost POST, on b')
      expect(b.received).toEqual([2, 3])
      expect(a.received).toEqual([1])
      expect(c.id).toBe(id)
      expect(events).toEqual([])
      await draining
    }, 30_000)
  },
)
