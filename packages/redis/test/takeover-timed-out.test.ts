// A session claimed by the node its client resumed on (b), from another node's drain or from a
// live node b asked for it, whose handshake middleware outlasts b's handshakeTimeout while b is
// not closing (a database call without a timeout of its own). The client is answered
// PARLEY_HANDSHAKE_TIMEOUT and tries again: a timeout is no verdict on it, so b takes the session
// over all the same, without its client, and keeps it for its resume. The client's next try, on b
// or on another live node (c), resumes it, `recovered: true`, each broadcast to its room once, in
// order, its own emits once each. Given back, as after a refusal, the claim ended the handoff,
// and that try got the session's CLOSE `server disconnect`: the session lost for good.
import { connect, type Socket } from '@parley/client'
import type { TransportName } from '@parley/protocol'
import { describe, expect, it, onTestFinished } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { type Gate, gate } from '../../server/test/gate.js'
import { until, within } from '../../server/test/helpers.js'
import { balancedSuite, startTrafficNode, toldTo } from './e2e-suite.js'

/** The balancer's order of the nodes: a, b, c. */
const [A, B, C] = [0, 1, 2]
/** b's handshakeTimeout: well under the client's connectTimeout, so that the client reads b's answer. */
const BOUND = 1000

/** A middleware that lets every client through but, once `armed()`, the first one: held at `cue`. */
function holdingOnce(cue: Gate, armed: () => boolean) {
  let spent = false
  return async () => {
    if (!armed() || spent) return
    spent = true
    await cue.pass()
  }
}

/** How the session leaves a: its drain hands it off, or a live a hands it to b, which asked for it. */
type Leaving = 'a drains' | 'a stays live'

describe.skipIf(skipRedisSuites())(
  'a takeover whose middleware outlasts handshakeTimeout on a live node',
  () => {
    const { suite, balance } = balancedSuite()
    const { nodes, clients } = suite

    async function resumedAfterTimeout(leaving: Leaving, transport: TransportName, retryOn: 'b' | 'c') {
      const cue = gate()
      onTestFinished(() => cue.open())
      let armed = false
      const a = await startTrafficNode(suite.redis.url, nodes)
      const b = await startTrafficNode(suite.redis.url, nodes, {
        handshakeTimeout: BOUND,
        setup: (app) => app.parley.use(holdingOnce(cue, () => armed)),
      })
      const c = await startTrafficNode(suite.redis.url, nodes, { seen: true })
      const balancer = await balance([a, b, c])
      let n = 0
      const broadcast = () => c.started.app.parley.to('room').emit('room', ++n)

      balancer.avoid.add(B).add(C)
      const client: Socket = connect(`${balancer.url}/parley`, {
        transports: [transport],
        reconnectionDelay: 100,
        reconnectionDelayMax: 300,
      })
      clients.push(client)
      const got: number[] = []
      client.on('room', (k: number) => got.push(k))
      await until(() => client.connected && a.connections.length === 1, 3000, 'connected to a')
      const id = client.id
      const told = toldTo(client)
      // The cut of a live a is a disconnect the client resumes from; any other reason ends the session.
      const ended = () => told.lost.filter((reason) => reason !== 'transport close')
      broadcast()
      client.emit('up', 1)
      await until(() => got.length === 1 && a.received.length === 1, 3000, 'the first broadcast and emit')

      // The resume reaches b, whose claim wins and whose middleware holds it past its bound.
      balancer.avoid.clear()
      balancer.avoid.add(A).add(C)
      armed = true
      const aClosed = leaving === 'a drains' ? a.started.app.close() : undefined
      if (leaving === 'a stays live') balancer.cut()
      await until(() => cue.reached(), 5000, "b's middleware to hold the takeover")
      broadcast()
      client.emit('up', 2)

      // The client's next tries go to `retryOn` alone. Its requests and upgrades so far: one more
      // is its next try, after b's answer, which only b's handshakeTimeout can give (the middleware
      // holds until the test ends, and b is not closing).
      const tries = () => balancer.forwarded.reduce((sum, k) => sum + k, 0)
      const before = tries()
      balancer.avoid.clear()
      balancer.avoid.add(A).add(retryOn === 'b' ? C : B)
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
