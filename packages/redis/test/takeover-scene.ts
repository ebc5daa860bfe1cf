// The scene of the tests of a takeover held in b's handshake middleware: nodes a, b and c behind
// a round-robin balancer, the real client's session on a, then taken over by b when a leaves,
// b's middleware holding that takeover at a gate. Each test says what b does next and what the
// client sees.
import { type ClientOptions, connect, type Socket } from '@parley/client'
import type { TransportName } from '@parley/protocol'
import { onTestFinished } from 'vitest'
import type { RoundRobinProxy } from '../../../test/support/round-robin.js'
import { type Gate, gate } from '../../server/test/gate.js'
import { until } from '../../server/test/helpers.js'
import { holdingOnce } from '../../server/test/holding-once.js'
import { balancedSuite, startTrafficNode, type TrafficNode, toldTo } from './e2e-suite.js'

/** The balancer's order of the nodes. */
const ORDER = { a: 0, b: 1, c: 2 } as const

type NodeName = keyof typeof ORDER

/** How the session leaves a: its drain hands it off, or a live a hands it to b, which asked for it. */
export type Leaving = 'a drains' | 'a stays live'

export interface TakeoverScene {
  a: TrafficNode
  b: TrafficNode
  c: TrafficNode
  balancer: RoundRobinProxy
  /** Where b's middleware holds the takeover; opened at the test's end at the latest. */
  cue: Gate
  /** The suite's clients, disconnected after each test. */
  clients: Socket[]
  /** Sends the next numbered `room` broadcast, from c (one sender: its order is theirs). */
  broadcast(): void
  /** The client's requests and upgrades so far, through the balancer. */
  tries(): number
  /** Sends the balancer's next requests and upgrades to `node` alone. */
  only(node: NodeName): void
  /** Makes b's middleware hold the next handshake it meets. */
  arm(): void
}

/** What b is given: its handshakeTimeout, its handoff.timeout, and what its middleware does once let through. */
export interface BOwn {
  handshakeTimeout?: number
  handoffTimeout?: number
  afterHold?: () => void
}

/** What every node of the scene is given: its recovery window (the server's default when not given). */
export interface EveryOwn {
  recoveryWindow?: number
}

/**
 * A `balancedSuite` whose tests start a `TakeoverScene` with `scene(bOwn, everyOwn)`; the suite
 * closes its nodes, balancer and clients after each test.
 */
export function takeoverSuite() {
  const { suite, balance } = balancedSuite()
  const { nodes, clients } = suite

  async function scene(bOwn: BOwn = {}, everyOwn: EveryOwn = {}): Promise<TakeoverScene> {
    const cue = gate()
    onTestFinished(() => cue.open())
    let armed = false
    const { afterHold, ...timeouts } = bOwn
    const a = await startTrafficNode(suite.redis.url, nodes, everyOwn)
    const b = await startTrafficNode(suite.redis.url, nodes, {
      ...everyOwn,
      ...timeouts,
      setup: (app) => app.parley.use(holdingOnce(cue, () => armed, afterHold)),
    })
    const c = await startTrafficNode(suite.redis.url, nodes, { ...everyOwn, seen: true })
    const balancer = await balance([a, b, c])
    let n = 0
    return {
      a,
      b,
      c,
      balancer,
      cue,
      clients,
      broadcast: () => c.started.app.parley.to('room').emit('room', ++n),
      tries: () => balancer.forwarded.reduce((sum, k) => sum + k, 0),
      only(node) {
        balancer.avoid.clear()
        for (const [name, i] of Object.entries(ORDER)) if (name !== node) balancer.avoid.add(i)
      },
      arm() {
        armed = true
      },
    }
  }

  return { suite, scene }
}

/**
 * A client of the scene's nodes over `transport`, quick to come back (with `options` besides), and
 * the `room` broadcasts it got.
 */
export function roomClient(
  scene: TakeoverScene,
  transport: TransportName = 'websocket',
  options: Partial<ClientOptions> = {},
) {
  const client: Socket = connect(`${scene.balancer.url}/parley`, {
    transports: [transport],
    reconnectionDelay: 100,
    reconnectionDelayMax: 300,
    ...options,
  })
  scene.clients.push(client)
  const got: number[] = []
  client.on('room', (n: number) => got.push(n))
  return { client, got }
}

/**
 * The client of the takeover, connected to a, its session's id, what it is told from then on,
 * and the first broadcast and emit there.
 */
export async function clientOnA(
  scene: TakeoverScene,
  transport: TransportName,
  options: Partial<ClientOptions> = {},
) {
  const { a } = scene
  scene.only('a')
  const { client, got } = roomClient(scene, transport, options)
  await until(() => client.connected && a.connections.length === 1, 3000, 'connected to a')
  const id = client.id
  const told = toldTo(client)
  scene.broadcast()
  client.emit('up', 1)
  await until(() => got.length === 1 && a.received.length === 1, 3000, 'the first broadcast and emit')
  return { client, got, id, told }
}

/**
 * a leaves (`leaving`) and the client's resume reaches b alone, whose claim wins and whose
 * middleware holds the takeover; then one more broadcast and emit. Resolves to a's close, when
 * it drains (in an object: an async function's result would wait for it).
 */
export async function heldAtB(
  scene: TakeoverScene,
  client: Socket,
  leaving: Leaving,
): Promise<{ aClosed: Promise<unknown> | undefined }> {
  scene.only('b')
  scene.arm()
  const aClosed = leaving === 'a drains' ? scene.a.started.app.close() : undefined
  if (leaving === 'a stays live') scene.balancer.cut()
  await until(() => scene.cue.reached(), 5000, "b's middleware to hold the takeover")
  scene.broadcast()
  client.emit('up', 2)
  return { aClosed }
}
