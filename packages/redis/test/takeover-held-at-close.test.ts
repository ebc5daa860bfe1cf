// A session a draining node (a) handed off, claimed by the node its client resumed on (b), whose
// handshake middleware never settles (a database call without a timeout of its own), while b too
// begins to close. b's verdict would decide nothing: its drain hands every session on, and the
// node the client resumes on judges it again. So b answers the client at once,
// PARLEY_SERVER_SHUTTING_DOWN, takes the session over without it, and its drain hands it on with
// the others: the client's next try, on a live node (c), resumes it, `recovered: true`, each
// broadcast to its room once, in order, its own emits once each.
//
// Two ways b lost it when it waited for the middleware instead: its handshakeTimeout ran out
// during its drain (PARLEY_HANDSHAKE_TIMEOUT, the claim given back), or the drain's wait for the
// takeovers under way took its whole handoff.timeout, so that it handed nothing on, neither this
// session nor b's own, and `close()` cut the middleware and gave the claim back.
import type { Socket } from '@parley/client'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { toldTo } from './e2e-suite.js'
import { clientOnA, heldAtB, roomClient, takeoverSuite } from './takeover-scene.js'

describe.skipIf(skipRedisSuites())('a takeover whose middleware is still running as its node closes', () => {
  const { scene } = takeoverSuite()

  /**
   * The scene: `b` given `bOwn` (its handshakeTimeout, its handoff.timeout); with `resident`, a
   * client of b's own besides, whose session b's drain must hand on too.
   */
  async function handedOnByB(bOwn: { handshakeTimeout?: number; handoffTimeout: number }, resident: boolean) {
    const held = await scene(bOwn)
    const { a, b, c, broadcast, tries } = held

    // b's own client, if any, then the client of the takeover, on a.
    held.only('b')
    const own = resident ? roomClient(held) : undefined
    if (own) await until(() => own.client.connected && b.connections.length === 1, 3000, 'connected to b')
    const { client, got, id, told } = await clientOnA(held, 'websocket')
    const ownId = own?.client.id
    const ownTold = own && toldTo(own.client)

    // a drains; the resume reaches b, whose claim wins and whose middleware holds it.
    const { aClosed } = await heldAtB(held, client, 'a drains')

    // b begins to close, its middleware still holding the takeover.
    const before = tries()
    const bClosed = b.started.app.close()
    await until(() => tries() > before, 5000, "the client's next try, after b's answer")
    broadcast()

    // The next tries reach c alone: the sessions b's drain handed on are resumed there.
    held.only('c')
    // On c, whatever it came to: resumed, or a new session in its place.
    const onC = (on: Socket) =>
      on.connected && [...c.restored, ...c.connections].some(({ id }) => id === on.id)
    // Or ended for good: its session given up on b, whose answer to the next try says so.
    await until(() => onC(client) || told.lost.length > 0, 8000, 'the client on c')
    expect(told.lost).toEqual([])
    expect(client.recovered).toBe(true)
    if (own && ownTold) {
      await until(() => onC(own.client) || ownTold.lost.length > 0, 5000, "b's own client on c")
      expect(ownTold.lost).toEqual([])
      expect(own.client.recovered).toBe(true)
    }
    broadcast()
    client.emit('up', 3)
    await until(() => got.length >= 4 && c.received.includes(3), 3000, 'the last broadcast and emit')
    if (own) await until(() => own.got.length >= 4, 3000, "the last broadcast to b's own client")
    await within(Promise.all([aClosed, bClosed]), 8000, 'a and b to close')

    expect(client.id).toBe(id)
    expect(c.connections).toEqual([])
    expect(got).toEqual([1, 2, 3, 4])
    expect([...a.received, ...b.received, ...c.received].sort((x, y) => x - y)).toEqual([1, 2, 3])
    if (own) {
      expect(own.client.id).toBe(ownId)
      expect(own.got).toEqual([1, 2, 3, 4])
    }
  }

  it(
    'hands the session on rather than give the claim back at its handshakeTimeout, within the drain',
    () => handedOnByB({ handshakeTimeout: 3000, handoffTimeout: 7000 }, false),
    50_000,
  )

  it(
    "hands it on, and the node's own sessions, when the middleware would outlast the drain's handoff.timeout",
    () => handedOnByB({ handoffTimeout: 3000 }, true),
    50_000,
  )
})
