// A session a draining node (a) handed off, claimed by the node its client resumed on (b), whose
// handshake middleware throws once b too has begun to close (its database pool closed by a close
// hook, say). The client is answered PARLEY_SERVER_SHUTTING_DOWN as b begins to close, without
// waiting for the middleware, and tries again, and b takes the session over all the same, without
// its client: the throw after is no verdict on a client admitted before. b's drain hands it on, and the client's next try, on a live node (c), resumes it,
// `recovered: true`. The broadcasts to its room sent before, during and after b's refusal reach
// it once each, in order, and its own emits reach one node once each. Given back, as after a
// refusal, the claim would end the handoff, and c would give the client a new session.
import { connect, type Socket } from '@parley/client'
import type { TransportName } from '@parley/protocol'
import type { FastifyInstance } from 'fastify'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { type Gate, gate } from '../../server/test/gate.js'
import { until, within } from '../../server/test/helpers.js'
import { balancedSuite, startTrafficNode, type TrafficNode, toldTo } from './e2e-suite.js'

/** The balancer's order of the nodes: a, b, c. */
const [A, B, C] = [0, 1, 2]

/**
 * A middleware that lets every client through but, once `armed()`, the first one, which it holds
 * until `cue` opens, then throws at, as a middleware whose database pool a close hook closed.
 */
function throwingOnce(cue: Gate, armed: () => boolean, threw: () => void) {
  let spent = false
  return (app: FastifyInstance) =>
    app.parley.use(async () => {
      if (!armed() || spent) return
      spent = true
      await cue.pass()
      threw()
      throw new Error('the database pool is closed')
    })
}

/** The numbered `room` broadcasts `node` sends (one sender: its order is theirs). */
function broadcaster(node: TrafficNode) {
  let n = 0
  return () => node.started.app.parley.to('room').emit('room', ++n)
}

describe.skipIf(skipRedisSuites())('a takeover whose middleware throws once its node began to close', () => {
  const { suite, balance } = balancedSuite()
  const { nodes, clients } = suite

  async function resumedOnLiveNode(transport: TransportName, close: 'app.close()' | 'drain()') {
    const cue = gate()
    let armed = false
    let thrown = false
    const a = await startTrafficNode(suite.redis.url, nodes)
    const b = await startTrafficNode(suite.redis.url, nodes, {
      setup: throwingOnce(
        cue,
        () => armed,
        () => {
          thrown = true
        },
      ),
    })
    const c = await startTrafficNode(suite.redis.url, nodes, { seen: true })
    const balancer = await balance([a, b, c])
    balancer.avoid.add(B).add(C)
    const client: Socket = connect(`${balancer.url}/parley`, {
      transports: [transport],
      reconnectionDelay: 100,
      reconnectionDelayMax: 300,
    })
    clients.push(client)
    const got: number[] = []
    client.on('room', (n: number) => got.push(n))
    await until(() => client.connected && a.connections.length === 1, 3000, 'connected to a')
    const id = client.id
    const told = toldTo(client)
    const broadcast = broadcaster(c)

    // Before: on a.
    broadcast()
    client.emit('up', 1)
    await until(() => got.length === 1 && a.received.length === 1, 3000, 'the first broadcast and emit')

    // a drains; the balancer sends the resume to b, whose claim wins and whose middleware holds it.
    balancer.avoid.clear()
    balancer.avoid.add(A).add(C)
    armed = true
    const aClosed = a.started.app.close()
    await until(() => cue.reached(), 5000, "b's middleware to hold the takeover")
    broadcast()
    client.emit('up', 2)

    // b begins to close, which tells the client to try again; then the middleware throws.
    const bClosed = close === 'app.close()' ? b.started.app.close() : b.started.app.parley.drain()
    await until(() => b.started.app.parley.closing, 2000, 'b to begin closing')
    // The client's requests and upgrades so far: one more is its next try, after b's answer.
    const tries = () => balancer.forwarded.reduce((sum, n) => sum + n, 0)
    const before = tries()
    cue.open()
    broadcast()
    await until(() => thrown && tries() > before, 3000, "the client's next try, after b's refusal")
    broadcast()

    // Its next tries reach c alone: the session, handed on by b's drain, is resumed there.
    balancer.avoid.clear()
    balancer.avoid.add(A).add(B)
    await until(() => c.restored.length === 1 && client.connected, 8000, 'the session resumed on c')
    broadcast()
    client.emit('up', 3)
    await until(() => got.length >= 5 && c.received.includes(3), 3000, 'the last broadcast and emit')
    await within(Promise.all([aClosed, bClosed]), 8000, 'a and b to close')

    expect(client.id).toBe(id)
    expect(client.recovered).toBe(true)
    expect(c.restored[0]?.id).toBe(id)
    expect(c.connections).toEqual([])
    expect(got).toEqual([1, 2, 3, 4, 5])
    expect([...a.received, ...b.received, ...c.received].sort((x, y) => x - y)).toEqual([1, 2, 3])
    expect(told.lost).toEqual([])
  }

  it.each(['websocket', 'polling'] as const)(
    'resumes the session on a live node, recovered, over %s (the node closes with app.close())',
    (transport) => resumedOnLiveNode(transport, 'app.close()'),
    40_000,
  )

  it(
    'resumes the session on a live node, recovered, over sse (the node drains with drain())',
    () => resumedOnLiveNode('sse', 'drain()'),
    40_000,
  )
})
