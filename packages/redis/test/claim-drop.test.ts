// A claim whose connection to Redis drops after Redis ran it, with real servers and the real
// client: the node that claimed cannot tell whether it won, so it takes the claim back (once its
// connection is back, before anything else) and tells the client to try again; the next try
// takes the session over, recovered, nothing lost either way.
import { connect } from '@parley/client'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { startTcpProxy, type TcpProxy } from '../../../test/support/tcp-proxy.js'
import { sleep, until, within } from '../../server/test/helpers.js'
import { balancedSuite, startTrafficNode, type TrafficNode } from './e2e-suite.js'

describe.skipIf(skipRedisSuites())('a claim whose connection to Redis drops', () => {
  let cutter: TcpProxy | undefined
  const { suite, balance } = balancedSuite<TrafficNode>({
    afterNodes: async () => {
      await cutter?.close()
      cutter = undefined
    },
  })
  const { nodes, clients } = suite

  it('tells the client to try again, and its next try takes the session over, recovered, nothing lost', async () => {
    // b reaches Redis through a proxy that can cut its connection at a given answer.
    cutter = await startTcpProxy(suite.redis.port)
    const a = await startTrafficNode(suite.redis.url, nodes)
    const b = await startTrafficNode(`redis://127.0.0.1:${new URL(cutter.url).port}`, nodes)
    const balancer = await balance([a, b])
    const c = connect(`${balancer.url}/parley`, { transports: ['websocket'], autoConnect: false })
    clients.push(c)
    const events: string[] = []
    c.on('disconnect', (reason: string) => events.push(`disconnect ${reason}`))
    const got: number[] = []
    c.on('room', (n: number) => got.push(n))
    balancer.avoid.add(1)
    c.connect()
    await until(() => c.connected, 3000, 'connect to a')
    balancer.avoid.clear()
    const id = c.id!

    let up = 0
    let down = 0
    const traffic = setInterval(() => {
      c.emit('up', ++up)
      // From a, then (once the session is there) from b: every one reaches the client once.
      const from = b.restored.length > 0 ? b : a
      if (!from.started.app.parley.closing) from.started.app.parley.to('room').emit('room', ++down)
    }, 10)
    await sleep(100)
    // b's claim runs in Redis, and its answer (the snapshot names the socket) is lost.
    const cut = cutter.cutAt(`"id":"${id}"`)
    balancer.avoid.add(0)
    const draining = a.started.app.close()
    await within(cut, 5000, "b's claim, its answer to be cut")
    await until(() => b.restored.length === 1, 8000, 'restored on b')
    await draining
    await sleep(100)
    clearInterval(traffic)
    await until(() => c.connected && got.length >= down, 5000, 'every broadcast')
    await until(() => a.received.length + b.received.length >= up, 5000, 'every up')
    await sleep(100)

    const numbers = (n: number) => Array.from({ length: n }, (_, i) => i + 1)
    expect(c.recovered).toBe(true)
    expect(c.id).toBe(id)
    expect(b.connections).toEqual([])
    expect(b.restored[0]!.id).toBe(id)
    expect([...a.received, ...b.received]).toEqual(numbers(up))
    expect(got).toEqual(numbers(down))
    expect(events).toEqual([])
    expect(b.warnings).toContain(
      '@parley/redis: a claim got no answer from Redis; it is taken back once Redis answers, and the client tries again',
    )
  }, 35_000)
})
