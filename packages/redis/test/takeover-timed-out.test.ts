// A session claimed by the node its client resumed on (b), from another node's drain or from a
// live node b asked for it, whose handshake middleware outlasts b's handshakeTimeout while b is
// not closing (a database call without a timeout of its own). The client is answered
// PARLEY_HANDSHAKE_TIMEOUT and tries again: a timeout is no verdict on it, so b takes the session
// over all the same, without its client, and keeps it for its resume. The client's next try, on b
// or on another live node (c), resumes it, `recovered: true`, each broadcast to its room once, in
// order, its own emits once each. Given back, as after a refusal, the claim ended the handoff,
// and that try got the session's CLOSE `server disconnect`: the session lost for good.
//
// Kept so, the session waits for that try no longer than what was left of its client's recovery
// window when b claimed it (the life left of the handoff a wrote for its window), not a new
// window from b's answer: a client that never comes back is held no longer than configured.
import type { TransportName } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { clientOnA, heldAtB, type Leaving, takeoverSuite } from './takeover-scene.js'

/** b's handshakeTimeout: well under the client's connectTimeout, so that the client reads b's answer. */
const BOUND = 1000

/** Every node's recovery window in the case of a window spent during the takeover. */
const WINDOW = 2000

/**
 * b's handshakeTimeout there: past the end of the client's window, whatever was left of it when b
 * claimed the session, so that the session ends as b answers.
 */
const PAST_WINDOW = 2500

describe.skipIf(skipRedisSuites())(
  'a takeover whose middleware outlasts handshakeTimeout on a live node',
  () => {
    const { scene } = takeoverSuite()

    async function resumedAfterTimeout(leaving: Leaving, transport: TransportName, retryOn: 'b' | 'c') {
      const held = await scene({ handshakeTimeout: BOUND })
      const { a, b, c, broadcast, tries } = held
      const { client, got, id, told } = await clientOnA(held, transport)
      // The cut of a live a is a disconnect the client resumes from; any other reason ends the session.
      const ended = () => told.lost.filter((reason) => reason !== 'transport close')

      // The resume reaches b, whose claim wins and whose middleware holds it past its bound.
      const { aClosed } = await heldAtB(held, client, leaving)

      // The client's next tries go to `retryOn` alone. Its requests and upgrades so far: one more
      // is its next try, after b's answer, which only b's handshakeTimeout can give (the middleware
      // holds until the test ends, and b is not closing).
      const before = tries()
      held.only(retryOn)
      await until(
        () => tries() > before,
        5000,
        "the client's next try, after b's answer at its handshakeTimeout",
      )
      broadcast()
      // Resumed, or ended for good: the session given back by b, whose handoff's end says so.
      await until(
        () => (client.connected && got.length >= 3) || ended().length > 0,
        8000,
        'the client resumed',
      )
      expect(ended()).toEqual([])
      expect(client.recovered).toBe(true)
      expect(client.id).toBe(id)
      broadcast()
      client.emit('up', 3)
      const received = () => [...a.received, ...b.received, ...c.received]
      await until(() => got.length >= 4 && received().includes(3), 3000, 'the last broadcast and emit')
      if (aClosed) await within(aClosed, 8000, 'a to close')

      expect(got).toEqual([1, 2, 3, 4])
      expect(received().sort((x, y) => x - y)).toEqual([1, 2, 3])
      // No new session anywhere: the one client's was taken over, and resumed.
      expect([...b.connections, ...c.connections]).toEqual([])
      expect(b.restored.map((socket) => socket.id)).toContain(id)
    }

    it("keeps the session no longer than what was left of its client's window, not a new window from b's answer (a drains; polling)", async () => {
      const held = await scene({ handshakeTimeout: PAST_WINDOW }, { recoveryWindow: WINDOW })
      const { b } = held
      // A connectTimeout past b's bound, so that the client reads b's answer.
      const { client, id, told } = await clientOnA(held, 'polling', { connectTimeout: 10_000 })
      const { aClosed } = await heldAtB(held, client, 'a drains')
      // b answers at its bound, takes the session over without its client (not given back: its
      // end would then be `server disconnect`, which the client does not try again after) and
      // keeps it for what was left of the window: nothing. The client's next try, on b, finds it
      // ended by its window and starts anew; kept for a new window, the session was resumed.
      await until(() => client.connected, 8000, 'the client to connect again')
      expect(b.restored.map((socket) => socket.id)).toEqual([id])
      expect(told.lost).toEqual(['transport close'])
      expect(client.recovered).toBe(false)
      expect(client.id).not.toBe(id)
      expect(b.connections.map((socket) => socket.id)).toEqual([client.id])
      if (aClosed) await within(aClosed, 8000, 'a to close')
    }, 30_000)

    it(
      "resumes the session on b, recovered, after b's handshakeTimeout (a drains; websocket)",
      () => resumedAfterTimeout('a drains', 'websocket', 'b'),
      30_000,
    )

    it(
      "resumes the session on another live node, recovered, after b's handshakeTimeout (a drains; polling)",
      () => resumedAfterTimeout('a drains', 'polling', 'c'),
      30_000,
    )

    it(
      "resumes the session on another live node, recovered, after b's handshakeTimeout (a live node asked for it; websocket)",
      () => resumedAfterTimeout('a stays live', 'websocket', 'c'),
      30_000,
    )
  },
)
