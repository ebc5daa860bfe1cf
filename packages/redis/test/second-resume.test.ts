// A second resume of a session that another node has claimed and is still taking over: the
// client gave up on its first try (a slow takeover, a loaded node) and tried again. That try must
// not open a new session, which would leave the one being restored behind with all it holds:
// it is told to try again, and finds the session once the takeover is done.
import { connect } from '@parley/client'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { type RoundRobinProxy, startRoundRobin } from '../../../test/support/round-robin.js'
import { until } from '../../server/test/helpers.js'
import { endToEndSuite, startTrafficNode } from './e2e-suite.js'

describe.skipIf(skipRedisSuites())('a second resume while another node takes the session over', () => {
  let balancer: RoundRobinProxy | undefined
  const suite = endToEndSuite({
    beforeNodes: async () => {
      await balancer?.close()
      balancer = undefined
    },
  })
  const { nodes, clients } = suite

  it('is told to try again, not given a new session; the takeover goes on, recovered', async () => {
    const a = await startTrafficNode(suite.redis.url, nodes)
    const b = await startTrafficNode(suite.redis.url, nodes)
    // b's middleware holds the first takeover that reaches it, until released: its claim has won
    // in Redis, and the session is not restored yet.
    let release: () => void = () => {}
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    let holding = false
    let armed = true
    b.started.app.parley.use(async () => {
      if (!armed) return
      armed = false
      holding = true
      await held
    })
    // The client's session id, read from its polling URLs (the client keeps it to itself).
    let sid: string | undefined
    const recording: typeof fetch = (input, init) => {
      sid ??=
        new URL(String(input instanceof Request ? input.url : input)).searchParams.get('sid') ?? undefined
      return fetch(input, init)
    }
    balancer = await startRoundRobin([a, b].map((n) => Number(new URL(n.started.base).port)))
    balancer.avoid.add(1)
    const c = connect(`${balancer.url}/parley`, { transports: ['polling'], fetch: recording })
    clients.push(c)
    const disconnects: string[] = []
    c.on('disconnect', (reason: string) => disconnects.push(reason))
    await until(() => c.connected && sid !== undefined, 3000, 'connected to a')
    const id = c.id

    // a drains, and the balancer sends the client's resume to b, whose claim wins.
    balancer.avoid.clear()
    balancer.avoid.add(0)
    const draining = a.started.app.close()
    await until(() => holding, 8000, 'b taking the session over')

    // The client's second try, straight to b (as a balancer may send it). Its claim finds b's
    // own won: Redis answered, and the client learns the session is arriving, not that the
    // store could not be asked.
    const hello = JSON.stringify([8, { sid, ack: 0 }])
    const second = await fetch(`${b.started.base}/poll?v=1`, { method: 'POST', body: hello })
    expect(b.connections.map((s) => s.id)).toEqual([])
    expect({ status: second.status, answer: await second.json() }).toEqual({
      status: 503,
      answer: {
        code: 'PARLEY_SERVER_SHUTTING_DOWN',
        message: 'the session is still arriving from another node: try again',
      },
    })

    release()
    await until(() => b.restored.length === 1, 8000, 'restored on b')
    await draining
    await until(() => c.connected && c.transport === 'polling', 8000, 'resumed on b')
    expect(b.restored[0]!.id).toBe(id)
    expect(c.id).toBe(id)
    expect(c.recovered).toBe(true)
    expect(disconnects).toEqual([])
  })
})
