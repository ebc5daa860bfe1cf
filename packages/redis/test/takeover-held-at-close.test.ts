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
import { connect, type Socket } from '@parley/client'
import { describe, expect, it, onTestFinished } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import type { RoundRobinProxy } from '../../../test/support/round-robin.js'
import { type Gate, gate } from '../../server/test/gate.js'
import { until, within } from '../../server/test/helpers.js'
import { balancedSuite, startTrafficNode, toldTo } from './e2e-suite.js'

/** The balancer's order of the nodes: a, b, c. */
const [A, B, C] = [0, 1, 2]

/** A middleware that lets every client through but, once `armed()`, the first one: held at `cue`. */
function holdingOnce(cue: Gate, armed: () => boolean) {
  let spent = false
  return async () => {
    if (!armed() || spent) return
    spent = true
    await cue.pass()
  }
}

/** A client of the nodes behind `balancer`, quick to come back, and the `room` broadcasts it got. */
function roomClient(balancer: RoundRobinProxy, clients: Socket[]) {
  const client = connect(`${balancer.url}/parley`, {
    transports: ['websocket'],
    reconnectionDelay: 100,
    reconnectionDelayMax: 300,
  })
  clients.push(client)
  const got: number[] = []
  client.on('room', (n: number) => got.push(n))
  return { client, got }
}

describe.skipIf(skipRedisSuites())('a takeover whose middleware is still running as its node closes', () => {
  const { suite, balance } = balancedSuite()
  const { nodes, clients } = suite

  /**
   * The scene: `b` given `bOwn` (its handshakeTimeout, its handoff.timeout); with `resident`, a
   * client of b's own besides, whose session b's drain must hand on too.
   */
  async function handedOnByB(bOwn: { handshakeTimeout?: number; handoffTimeout: number }, resident: boolean) {
    const cue = gate()
    onTestFinished(() => cue.open())
    let armed = false
    const a = await startTrafficNode(suite.redis.url, nodes)
    const b = await startTrafficNode(suite.redis.url, nodes, {
      ...bOwn,
      setup: (app) => app.parley.use(holdingOnce(cue, () => armed)),
    })
    const c = await startTrafficNode(suite.redis.url, nodes, { seen: true })
    const balancer = await balance([a, b, c])
    let n = 0
    const broadcast = () => c.started.app.parley.to('room').emit('room', ++n)

    // b's own client, if any, then the client of the takeover, on a.
    balancer.avoid.add(A).add(C)
    const own = resident ? roomClient(balancer, clients) : undefined
    if (own) await until(() => own.client.connected && b.connections.length === 1, 3000, 'connected to b')
    balancer.avoid.clear()
    balancer.avoid.add(B).add(C)
    const { client, got } = roomClient(balancer, clients)
    await until(() => client.connected && a.connections.length === 1, 3000, 'connected to a')
    const id = client.id
    const ownId = own?.client.id
    const told = toldTo(client)
    const ownTold = own && toldTo(own.client)
    broadcast()
    client.emit('up', 1)
    await until(() => got.length === 1 && a.received.length === 1, 3000, 'the first broadcast and emit')

    // a drains; the resume reaches b, whose claim wins and whose middleware holds it.
    balancer.avoid.clear()
    balancer.avoid.add(A).add(C)
    armed = true
    const aClosed = a.started.app.close()
    await until(() => cue.reached(), 5000, "b's middleware to hold the takeover")
    broadcast()
    client.emit('up', 2)

    // b begins to close, its middleware still holding the takeover.
    const tries = () => balancer.forwarded.reduce((sum, k) => sum + k, 0)
    const before = tries()
    const bClosed = b.started.app.close()
    await until(() => tries() > before, 5000, "the client's next try, after b's answer")
    broadcast()

    // The next tries reach c alone: the sessions b's drain handed on are resumed there.
    balancer.avoid.clear()
    balancer.avoid.add(A).add(B)
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
