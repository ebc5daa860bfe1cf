// A session a draining node (a) handed off, claimed by the node its client resumed on (b), whose
// handshake middleware throws once b too has begun to close (its database pool closed by a close
// hook, say). The client is answered PARLEY_SERVER_SHUTTING_DOWN as b begins to close, without
// waiting for the middleware, and tries again, and b takes the session over all the same, without
// its client: the throw after is no verdict on a client admitted before. b's drain hands it on, and the client's next try, on a live node (c), resumes it,
// `recovered: true`. The broadcasts to its room sent before, during and after b's refusal reach
// it once each, in order, and its own emits reach one node once each. Given back, as after a
// refusal, the claim would end the handoff, and c would give the client a new session.
import type { TransportName } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { clientOnA, heldAtB, takeoverSuite } from './takeover-scene.js'

describe.skipIf(skipRedisSuites())('a takeover whose middleware throws once its node began to close', () => {
  const { scene } = takeoverSuite()

  async function resumedOnLiveNode(transport: TransportName, close: 'app.close()' | 'drain()') {
    let thrown = false
    // b's middleware, once the test lets the takeover through, throws at it, as a middleware
    // whose database pool a close hook closed.
    const held = await scene({
      afterHold: () => {
        thrown = true
        throw new Error('the database pool is closed')
      },
    })
    const { a, b, c, cue, broadcast, tries } = held

    // Before: on a.
    const { client, got, id, told } = await clientOnA(held, transport)

    // a drains; the balancer sends the resume to b, whose claim wins and whose middleware holds it.
    const { aClosed } = await heldAtB(held, client, 'a drains')

    // b begins to close, which tells the client to try again; then the middleware throws.
    const bClosed = close === 'app.close()' ? b.started.app.close() : b.started.app.parley.drain()
    await until(() => b.started.app.parley.closing, 2000, 'b to begin closing')
    // The client's requests and upgrades so far: one more is its next try, after b's answer.
    const before = tries()
    cue.open()
    broadcast()
    await until(() => thrown && tries() > before, 3000, "the client's next try, after b's refusal")
    broadcast()

    // Its next tries reach c alone: the session, handed on by b's drain, is resumed there.
    held.only('c')
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
