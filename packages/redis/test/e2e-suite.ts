// The frame of the end-to-end suites: Parley servers, each with its own node-redis client, on
// one throwaway Redis, and the real client. A suite owns its nodes and clients; the hooks here
// close them after each test.
import { connect, type Socket } from '@parley/client'
import { type RedisAdapter, type RedisClient, redisAdapter } from '@parley/redis'
import type { ServerSocket } from '@parley/server'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import { createClient } from 'redis'
import { afterAll, afterEach, beforeAll, expect } from 'vitest'
import { type RedisServer, startRedis } from '../../../test/support/redis-server.js'
import { type RoundRobinProxy, startRoundRobin } from '../../../test/support/round-robin.js'
import { closeApp, type Started, sleep, startServer, until } from '../../server/test/helpers.js'
import type { RedisClientType } from './nodes.js'

/** What every node of such a suite has: its server and its own Redis client. */
export interface SuiteNode {
  started: Started
  redis: RedisClientType
}

/** The Redis adapter of `node`'s Parley. */
export const adapterOf = (node: SuiteNode) => node.started.app.parley.adapter as RedisAdapter

/**
 * Starts Redis once for the file; after each test disconnects the clients in `clients`, runs
 * `beforeNodes` (the suite closes its balancer there), closes every node in `nodes` and drops
 * its Redis client, then runs `afterNodes`.
 */
export function endToEndSuite<N extends SuiteNode>(
  hooks: { beforeNodes?: () => Promise<void>; afterNodes?: () => Promise<void> } = {},
): { readonly redis: RedisServer; readonly nodes: N[]; readonly clients: Socket[] } {
  let redis: RedisServer | undefined
  const nodes: N[] = []
  const clients: Socket[] = []
  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => {
    await redis?.stop()
  })
  afterEach(async () => {
    for (const c of clients.splice(0)) c.disconnect()
    await sleep(50)
    await hooks.beforeNodes?.()
    await Promise.all(nodes.splice(0).map(stopNode))
    await hooks.afterNodes?.()
  })
  return {
    get redis() {
      if (!redis) throw new Error('Redis is not started yet (beforeAll)')
      return redis
    },
    nodes,
    clients,
  }
}

/**
 * An `endToEndSuite` whose tests reach their nodes through round-robin balancers (no session
 * affinity): `balance(nodes)` starts one over the nodes' ports; the suite closes it after each
 * test, before the nodes, and runs `afterNodes` (what else the test opened: a link to Redis
 * that it cuts) once they are closed.
 */
export function balancedSuite<N extends SuiteNode>(hooks: { afterNodes?: () => Promise<void> } = {}) {
  const balancers: RoundRobinProxy[] = []
  const suite = endToEndSuite<N>({
    beforeNodes: async () => {
      await Promise.all(balancers.splice(0).map((balancer) => balancer.close()))
    },
    afterNodes: async () => {
      await hooks.afterNodes?.()
    },
  })
  async function balance(over: SuiteNode[]): Promise<RoundRobinProxy> {
    const balancer = await startRoundRobin(over.map((n) => Number(new URL(n.started.base).port)))
    balancers.push(balancer)
    return balancer
  }
  return { suite, balance }
}

/**
 * A `balancedSuite` with a list of what each test opens besides its nodes (a raw link to Redis, a
 * client of its own): `cleanups`, run one after another in the order they were pushed, once the
 * nodes are closed.
 */
export function cleanedSuite<N extends SuiteNode>() {
  const cleanups: (() => Promise<unknown>)[] = []
  const balanced = balancedSuite<N>({
    afterNodes: async () => {
      for (const cleanup of cleanups.splice(0)) await cleanup()
    },
  })
  return { ...balanced, cleanups }
}

/**
 * Closes `node`'s server unless closed, its sessions ended first (`closeApp`), then drops its
 * Redis client. A session whose client's goodbye had not arrived yet would otherwise be drained:
 * handed off, and waited for through the whole handoff timeout, since the other nodes close too.
 */
async function stopNode(node: SuiteNode): Promise<void> {
  if (!node.started.app.parley.closed) await closeApp(node.started.app)
  if (node.redis.isOpen) node.redis.destroy()
}

/** A node-redis client connected to `url`; its errors (Redis going away) are the adapter's to report. */
export async function connectedClient(url: string): Promise<RedisClientType> {
  const client = createClient({ url })
  client.on('error', () => {})
  await client.connect()
  return client
}

/**
 * Resolves once `node` takes another node for alive (`Adapter.otherNodes`). A drain that finds
 * none seals at once and closes: a test that sends requests through a closing node waits for this
 * first (the other node's first heartbeat may not be read yet on a loaded machine).
 */
export function seesOthers(node: SuiteNode): Promise<void> {
  return until(() => (node.started.app.parley.adapter.otherNodes?.() ?? 0) > 0, 3000, 'another node alive')
}

/**
 * Resolves once each node of `scene` takes every other one for alive (`Adapter.otherNodes`): each
 * has read the others' heartbeats (or heard them join). Nothing before waits for that: a node's
 * first heartbeat lands a moment after it listens, and the others read it at their next beat; on a
 * loaded machine that is after a test has begun to drain one, which, alone, seals at once instead
 * of handing off and waiting for a claim. Not for a scene with a node cut off from Redis.
 */
export function allSeeEachOther(scene: readonly SuiteNode[]): Promise<void> {
  const others = scene.length - 1
  return until(
    () => scene.every((node) => (node.started.app.parley.adapter.otherNodes?.() ?? 0) >= others),
    5000,
    `${scene.length} nodes each taking the others for alive`,
  )
}

/** A node whose sockets join `room` and whose received `up` messages are kept, in order. */
export interface TrafficNode extends SuiteNode {
  connections: ServerSocket[]
  restored: ServerSocket[]
  /** Numbered `up` messages received on this node, in order. */
  received: number[]
  warnings: string[]
  /** The same warnings with their details (an `err`, its `code`), in order. */
  warned: { message: string; details: Record<string, unknown> }[]
}

/**
 * Starts a `TrafficNode` whose adapter reaches Redis at `url` (another way to the same Redis: a
 * proxy), with drain by handoff, and adds it to `nodes` (the suite's, closed after each test).
 * `own`: the adapter's `requestTimeout`, the client as the adapter gets it (`view`: one whose
 * commands a test holds back, say), its Fastify options (`fastify`; by default, routes that
 * keep serving while it closes), how long its drain waits for claims (`handoffTimeout`), its
 * `handshakeTimeout` (which bounds its owner lookups too),
 * what else its app is given before it listens (`setup`), and whether to wait until it and the
 * nodes already in `nodes` take each other for alive (`seen`, see `allSeeEachOther`): a scene that
 * drains one of them and needs the drain to hand off, not seal at once, starts its last node so.
 */
export async function startTrafficNode(
  url: string,
  nodes: SuiteNode[],
  own: {
    requestTimeout?: number
    /** The adapter's `heartbeatInterval`; 300 ms by default. */
    heartbeatInterval?: number
    view?: (client: RedisClientType) => RedisClient
    fastify?: FastifyServerOptions
    handoffTimeout?: number
    handshakeTimeout?: number
    /** The server's `recovery.window`; its default (2 minutes) when not given. */
    recoveryWindow?: number
    /** Sets up the app further before it listens (hooks of the application's, say). */
    setup?: (app: FastifyInstance) => void
    /**
     * Runs as the server asks the adapter to settle a session before its unclaimed seal
     * (`settleHandOff`): the moment a drain stops waiting for claims.
     */
    settling?: () => void
    /** Resolves only once this node and every node already in `nodes` take each other for alive. */
    seen?: boolean
    /**
     * False: the adapter has no `askAdoption`, so that this node's drain seals the sessions nobody
     * claimed as an adapter without it does (what a scene of that seal needs, the other nodes
     * alive); true by default.
     */
    adopts?: boolean
  } = {},
): Promise<TrafficNode> {
  const client = await connectedClient(url)
  const node: TrafficNode = {
    started: undefined as unknown as Started,
    redis: client,
    connections: [],
    restored: [],
    received: [],
    warnings: [],
    warned: [],
  }
  const setup = (socket: ServerSocket) => socket.on('up', (n: number) => node.received.push(n))
  node.started = await startServer(
    {
      adapter: adoptingOrNot(
        settlingHook(
          redisAdapter({
            client: own.view?.(client) ?? client,
            heartbeatInterval: own.heartbeatInterval ?? 300,
            log: {
              warn: (details, message) => {
                node.warnings.push(message)
                node.warned.push({ message, details })
              },
            },
            ...(own.requestTimeout === undefined ? {} : { requestTimeout: own.requestTimeout }),
          }),
          own.settling,
        ),
        own.adopts ?? true,
      ),
      handoff: { timeout: own.handoffTimeout ?? 7000, retrySpread: 0 },
      ...(own.handshakeTimeout === undefined ? {} : { handshakeTimeout: own.handshakeTimeout }),
      ...(own.recoveryWindow === undefined ? {} : { recovery: { window: own.recoveryWindow } }),
    },
    (app) => {
      app.parley.on('connection', (socket) => {
        node.connections.push(socket)
        void socket.join('room')
        setup(socket)
      })
      app.parley.on('restored', (socket) => {
        node.restored.push(socket)
        setup(socket)
      })
      own.setup?.(app)
    },
    own.fastify ?? { return503OnClosing: false },
  )
  nodes.push(node)
  if (own.seen) await allSeeEachOther(nodes.filter((n) => !n.started.app.parley.closing))
  return node
}

/**
 * Checks what a client got of numbered broadcasts `1..n`, each sent by one of several nodes
 * (`bySender`: the numbers each sent, in order): every number once, and each node's in the order
 * it sent them. Broadcasts of two nodes have no order between them (see the README): one the old
 * node sent just before the session moved reaches the new node over Redis, after one the new node
 * sent its own socket a moment later.
 */
export function expectEachOnceInSenderOrder(got: readonly number[], bySender: readonly number[][]): void {
  const n = bySender.reduce((k, sent) => k + sent.length, 0)
  expect([...got].sort((x, y) => x - y)).toEqual(Array.from({ length: n }, (_, i) => i + 1))
  for (const sent of bySender) expect(got.filter((x) => sent.includes(x))).toEqual(sent)
}

/**
 * Resolves once `got` holds as many numbers as `bySender` says were sent (each sender's numbers,
 * by its name); after `ms` without them, fails naming what is missing and which node sent it (and
 * any number got twice), so that a failure says what was lost rather than only that something was.
 */
export async function untilEveryBroadcast(
  got: readonly number[],
  bySender: ReadonlyMap<string, readonly number[]>,
  ms: number,
): Promise<void> {
  const sent = () => [...bySender.values()].reduce((n, numbers) => n + numbers.length, 0)
  try {
    await until(() => got.length >= sent(), ms, 'every broadcast')
  } catch (err) {
    throw new Error(`timed out waiting for every broadcast: ${lostBroadcasts(got, bySender)}`, { cause: err })
  }
}

/** What `got` lacks of `bySender`'s numbers, by sender, in runs (`3-7, 9`), and what it got twice. */
export function lostBroadcasts(
  got: readonly number[],
  bySender: ReadonlyMap<string, readonly number[]>,
): string {
  const seen = new Set(got)
  const parts = [`${got.length} got`]
  for (const [sender, numbers] of bySender) {
    const missing = numbers.filter((n) => !seen.has(n))
    if (missing.length > 0)
      parts.push(`${missing.length} of ${numbers.length} sent by ${sender} missing: ${runs(missing)}`)
  }
  const twice = got.filter((n, i) => got.indexOf(n) !== i)
  if (twice.length > 0) parts.push(`got twice: ${runs(twice)}`)
  return parts.join('; ')
}

/** Ascending numbers written as runs: `1-3, 7`. */
function runs(numbers: readonly number[]): string {
  const out: string[] = []
  for (let i = 0; i < numbers.length; ) {
    let j = i
    while (j + 1 < numbers.length && numbers[j + 1] === numbers[j]! + 1) j++
    out.push(i === j ? `${numbers[i]}` : `${numbers[i]}-${numbers[j]}`)
    i = j + 1
  }
  return out.join(', ')
}

/** The adapters `factory` makes, with `settling` run as each is asked to settle a session. */
/** `factory`, its adapters without `askAdoption` unless `adopts` (see `startTrafficNode`). */
function adoptingOrNot(
  factory: ReturnType<typeof redisAdapter>,
  adopts: boolean,
): ReturnType<typeof redisAdapter> {
  if (adopts) return factory
  return (sockets) => Object.assign(factory(sockets), { askAdoption: undefined })
}

function settlingHook(
  factory: ReturnType<typeof redisAdapter>,
  settling: (() => void) | undefined,
): ReturnType<typeof redisAdapter> {
  if (!settling) return factory
  return (sockets) => {
    const adapter = factory(sockets)
    const settle = adapter.settleHandOff.bind(adapter)
    adapter.settleHandOff = (sid, ms) => {
      settling()
      return settle(sid, ms)
    }
    return adapter
  }
}

/**
 * The lines of a node's log (Fastify's JSON lines) where its drain gave up waiting for claims:
 * `handoff.timeout` passed and sessions handed off were sealed unclaimed (written once the
 * adapter's settle is over: a session claimed meanwhile is not among them). A drain whose
 * clients all came back elsewhere writes none, however loaded the machine, where a bound on the
 * drain's time would measure the load.
 */
export function unclaimedAtTimeout(log: readonly string[]): string[] {
  return log.filter((line) => line.includes('sessions were not claimed before the timeout'))
}

/**
 * A WebSocket client of the nodes behind `balancer`, quick to resume, kept in `clients` for the
 * suite's teardown, and the numbers of the `room` broadcasts it got; once it is connected to
 * `node`, the only client there.
 */
export async function roomClientOn(
  balancer: RoundRobinProxy,
  node: TrafficNode,
  clients: Socket[],
): Promise<{ client: Socket; got: number[] }> {
  const client = connect(`${balancer.url}/parley`, {
    transports: ['websocket'],
    reconnectionDelay: 100,
    reconnectionDelayMax: 300,
  })
  clients.push(client)
  const got: number[] = []
  client.on('room', (n: number) => got.push(n))
  await until(() => client.connected && node.connections.length === 1, 3000, 'connected to the first node')
  return { client, got }
}

/**
 * What `client` is told on its way, from now on: `refused`, each refusal as `code: message` (a
 * transport error with a code of its own: a transport's own failure, `PARLEY_TRANSPORT_ERROR`,
 * is none), and `lost`, the reason of each disconnect.
 */
export function toldTo(client: Socket): { refused: string[]; lost: string[] } {
  const told = { refused: [] as string[], lost: [] as string[] }
  client.on('transport_error', (_transport, err) => {
    if (err.code !== 'PARLEY_TRANSPORT_ERROR') told.refused.push(`${err.code}: ${err.message}`)
  })
  client.on('disconnect', (reason: string) => told.lost.push(reason))
  return told
}
