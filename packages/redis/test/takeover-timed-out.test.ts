// A session claimed by the node its client resumed on (b), from another node's drain or from a
// live node b asked for it, whose handshake middleware outlasts b's handshakeTimeout while b is
// not closing (a database call without a timeout of its own). The client is answered
// PARLEY_HANDSHAKE_TIMEOUT and tries again: a timeout is no verdict on it, so b takes the session
// over all the same, without its client, and keeps it for its resume. The client's next try, on b
// or on another live node (c), resumes it, `recovered: true`, each broadcast to its room once, in
// order, its own emits once each. Given back, as after a refusal, the claim ended the handoff,
// and that try got the session's CLOSE `server disconnect`: the session lost for good.
import type { TransportName } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { clientOnA, heldAtB, type Leaving, takeoverSuite } from './takeover-scene.js'

/** b's handshakeTimeout: well under the client's connectTimeout, so that the client reads b's answer. */
const BOUND = 1000

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
