// A client that reaches the node holding its session through a closing node, as the across-close
// suites set it up (get-, post-, resume- and websocket-across-close.test.ts): two nodes behind a
// balancer, the client connected to one, and a session of the closing node that nobody claims,
// which holds its drain open. Then the end of that drain: the GETs it relays, held on the other
// node, end with CLOSE 'server handoff', and the client goes on where its session is, having seen
// no transport fail.
import { type ClientOptions, connect, type Socket } from '@parley/client'
import { PacketType, type TransportName } from '@parley/protocol'
import type { ServerSocket } from '@parley/server'
import type { FastifyInstance } from 'fastify'
import { expect } from 'vitest'
import type { RoundRobinProxy } from '../../../test/support/round-robin.js'
import { until, within } from '../../server/test/helpers.js'
import { type RawClient, rawConnect } from '../../server/test/raw-client.js'
import {
  type balancedSuite,
  type SuiteNode,
  seesOthers,
  startTrafficNode,
  type TrafficNode,
} from './e2e-suite.js'

/** The header a node marks the requests it sends on with. */
const ROUTED = 'x-parley-routed'

/**
 * Counts, from now on, the GETs (an event stream, a held poll) relayed to `node` by another node
 * that `node` holds open; returns a reading of that count.
 */
export function relayedGetsHeld(node: SuiteNode): () => number {
  let held = 0
  node.started.app.server.on('request', (req, res) => {
    if (req.method !== 'GET' || req.headers[ROUTED] === undefined) return
    held++
    res.once('close', () => held--)
  })
  return () => held
}

/** Numbered `down` messages `client` receives, in order. */
export function received(client: Socket): number[] {
  const got: number[] = []
  client.on('down', (n: number) => got.push(n))
  return got
}

/** What the application heard of trouble: transport errors by code, and disconnects by reason. */
export function trouble(client: Socket): string[] {
  const heard: string[] = []
  client.on('transport_error', (_transport, error) => heard.push(error.code))
  client.on('disconnect', (reason) => heard.push(`disconnect: ${reason}`))
  return heard
}

/** The codes of the transport errors `client` reports. */
export function transportErrors(client: Socket): string[] {
  const lost: string[] = []
  client.on('transport_error', (_transport, error) => lost.push(error.code))
  return lost
}

/** A closing node's drain, and what the client that reaches another node through it went through. */
/**
 * Starts `node`'s close with its drain held open by a session of its own that nobody claims (a
 * raw polling client), once it sees the other nodes alive, and waits until it is closing.
 * `end()` says that session's goodbye and waits for the close to be over.
 */
export async function closeHeldOpen(node: TrafficNode): Promise<{ end: () => Promise<void> }> {
  const held = await rawConnect('polling', node.started.base)
  await seesOthers(node)
  const closing = node.started.app.close()
  await until(() => node.started.app.parley.closing, 3000, 'the node closing')
  return {
    async end() {
      await held.send({ type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' })
      await within(closing, 5000, 'the node closed once its held session said goodbye')
    },
  }
}

export interface Drain {
  /** The closing node, the balancer's first backend. */
  a: SuiteNode
  balancer: RoundRobinProxy
  /** The session of a's own that nobody claims: a's drain waits for it. */
  held: RawClient
  /** a's close under way. */
  draining: Promise<unknown>
  /** The GETs a relays to the other node, held there (see `relayedGetsHeld`). */
  heldOnB: () => number
  /** The client's transport errors (see `transportErrors`). */
  lost: readonly string[]
}

/**
 * Ends a's drain while the client's requests reach b through a: so far no transport failed and a
 * is still closing; the GET the client sent last (its stream goes on, or its next poll) is
 * relayed by a and held on b, not still on its way as the drain ends (a request a closing node
 * has yet to send on is refused or cut then, and fails the client's transport). Then the
 * balancer turns to b and the held session says goodbye: a's drain ends, and what it relays
 * ends with CLOSE 'server handoff'.
 */
export async function endDrain({ a, balancer, held, draining, heldOnB, lost }: Drain): Promise<void> {
  expect(lost).toEqual([])
  expect(a.started.app.parley.closed).toBe(false)
  await until(() => heldOnB() === 1, 3000, 'the next GET, held on b through a')
  balancer.avoid.clear()
  balancer.avoid.add(0)
  await held.send({ type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' })
  await within(draining, 5000, 'the drain over once the held session said goodbye')
}

/** The HTTP transports, each with Fastify closing both ways (its `return503OnClosing`). */
export const httpCases: [TransportName, boolean][] = [
  ['sse', true],
  ['polling', true],
  ['sse', false],
  ['polling', false],
]

/** Two nodes behind a balancer and a client of them, as `acrossClose` leaves them. */
export interface AcrossClose {
  /** The node that will close, the balancer's first backend. */
  a: TrafficNode
  b: TrafficNode
  balancer: RoundRobinProxy
  /** The GETs a relays to b, held there (see `relayedGetsHeld`), counted from before the client came. */
  heldOnB: () => number
  c: Socket
  /** The numbered `down` messages the client received (see `received`). */
  got: number[]
  /** The client's transport errors (see `transportErrors`). */
  lost: string[]
  /** The session of a's own that nobody claims: a's drain waits for it. */
  held: RawClient
}

/**
 * Starts nodes a (Fastify's `return503OnClosing`, and `forceCloseConnections`, as given) and b of the suite, a balancer over
 * them that sends everything to `home` for now, and a client of `transport` (with `options`)
 * through it, connected to `home`; then opens a session of a that nobody claims and waits for a
 * to see b alive (see `seesOthers`), so that a's close drains rather than seals at once.
 */
export async function acrossClose(
  { suite, balance }: ReturnType<typeof balancedSuite>,
  setup: {
    transport: TransportName
    return503OnClosing: boolean
    /** a's Fastify option of that name (its own default when left out). */
    forceCloseConnections?: boolean
    home: 'a' | 'b'
    options?: Pick<ClientOptions, 'WebSocket' | 'fetch'>
    /** What else b's app is given before it listens (see `startTrafficNode`). */
    bSetup?: (app: FastifyInstance) => void
  },
): Promise<AcrossClose> {
  const { return503OnClosing, forceCloseConnections } = setup
  const a = await startTrafficNode(suite.redis.url, suite.nodes, {
    fastify: {
      return503OnClosing,
      ...(forceCloseConnections === undefined ? {} : { forceCloseConnections }),
    },
  })
  const b = await startTrafficNode(suite.redis.url, suite.nodes, setup.bSetup ? { setup: setup.bSetup } : {})
  const balancer = await balance([a, b])
  const heldOnB = relayedGetsHeld(b)
  balancer.avoid.add(setup.home === 'a' ? 1 : 0)
  const c = connect(`${balancer.url}/parley`, { transports: [setup.transport], ...setup.options })
  suite.clients.push(c)
  const lost = transportErrors(c)
  const got = received(c)
  if (setup.home === 'a') await until(() => c.connected, 3000, 'connected to a')
  else await until(() => c.connected && b.connections.length === 1, 3000, 'connected to b')
  const held = await rawConnect('polling', a.started.base)
  await seesOthers(a)
  return { a, b, balancer, heldOnB, c, got, lost, held }
}

/**
 * The client's session on b (`socket`) sends `down` number `down` and the client sends `up`
 * number `up`; resolves once the client has had `down` of them and b `up` (each counting from 1).
 */
export async function bothWays(
  { b, c, got }: AcrossClose,
  socket: ServerSocket,
  down: number,
  up: number,
  ms: number,
  what: string,
): Promise<void> {
  socket.emit('down', down)
  c.emit('up', up)
  await until(() => got.length === down && b.received.length === up, ms, what)
}
