// The scene of the suites where an own broadcast of the old node races a claim: three Parley
// servers on one real Redis behind a round-robin proxy, and the real client, whose session lives
// on node a until its resume reaches node b. Redis commands of a and b can be held back, to set
// the order of the claim marker and the broadcast.
import { connect, type Socket } from '@parley/client'
import { type RedisAdapter, redisAdapter } from '@parley/redis'
import type { ServerSocket } from '@parley/server'
import { type Started, startServer, until } from '../../server/test/helpers.js'
import { balancedSuite, connectedClient, type SuiteNode } from './e2e-suite.js'
import { HeldInOrder, holding, tailBatch } from './handoff-support.js'

export interface RaceNode extends SuiteNode {
  connections: ServerSocket[]
  /** The commands its adapter sent, in order. */
  commands: string[][]
}

/** The PUBLISH of a claim marker. */
export const isMarker = (args: string[]) => args[0] === 'PUBLISH' && (args[2] ?? '').includes('"k":"claim"')

/** Until this is true, session `id` is not joined to its rooms on `node` (not taken over there). */
export const joinedOn = (node: RaceNode, id: string) => () =>
  node.started.app.parley.sockets.get(id)?.rooms.has(id) === true

/**
 * Holds back commands as `HeldInOrder` does, on the Redis client of the node it is given to
 * (`on`), which is made after it.
 */
export function heldBack(first: (args: string[]) => boolean, also: (args: string[]) => boolean) {
  let redis: { sendCommand(args: string[]): Promise<unknown> } | undefined
  const held = new HeldInOrder(
    { sendCommand: (args) => redis?.sendCommand(args) ?? Promise.reject(new Error('no node yet')) },
    first,
    also,
  )
  return Object.assign(held, {
    on(node: RaceNode) {
      redis = node.redis
    },
  })
}

/** What a `claimRaceSuite` may hold back on nodes a and b. */
export type Holds = { a?: ReturnType<typeof heldBack>; b?: ReturnType<typeof heldBack> }

/** Until `text` is in an append of `node` to a tail, one of its commands from `from` on. */
export function untilInTail(
  node: RaceNode,
  from: number,
  text: string,
  what = `${text} in the tail`,
): Promise<void> {
  return until(
    () =>
      node.commands
        .slice(from)
        .some((args) =>
          tailBatch(args)?.some((part) => part.texts.some((written) => written.includes(text))),
        ),
    3000,
    what,
  )
}

/**
 * A balanced suite (closed after each test) whose `scene` starts nodes a, b and c (their
 * commands held back as `holds` says), and a client whose session lives on a, in room `room`,
 * given its listeners by `listen` before it connects (what `listen` returns, the scene returns
 * too); then the network drops its WebSocket, and its resume reaches b, which has a (alive) hand
 * the session over.
 */
export function claimRaceSuite<Heard extends object>(listen: (client: Socket) => Heard) {
  const { suite, balance } = balancedSuite<RaceNode>()
  const { nodes, clients } = suite

  /** A node on the suite's Redis; `hold` may keep a command of its Redis client back. */
  async function startNode(
    prefix: string,
    hold?: (args: string[]) => Promise<unknown> | undefined,
    requestTimeout?: number,
  ) {
    const client = await connectedClient(suite.redis.url)
    const node: RaceNode = {
      started: undefined as unknown as Started,
      redis: client,
      connections: [],
      commands: [],
    }
    const seen = (args: string[]) => {
      node.commands.push(args)
      return hold?.(args)
    }
    node.started = await startServer(
      {
        adapter: redisAdapter({
          client: holding(client, seen),
          prefix,
          heartbeatInterval: 300,
          ...(requestTimeout === undefined ? {} : { requestTimeout }),
        }),
        handoff: { timeout: 5000, retrySpread: 0 },
      },
      (app) => {
        app.parley.on('connection', (socket) => {
          node.connections.push(socket)
          void socket.join('room')
        })
      },
      { return503OnClosing: false, logger: false },
    )
    nodes.push(node)
    return node
  }

  async function scene(
    prefix: string,
    holds: Holds = {},
    aRequestTimeout?: number,
  ): Promise<{ a: RaceNode; b: RaceNode; c: RaceNode; id: string } & Heard> {
    const a = await startNode(prefix, holds.a?.hold, aRequestTimeout)
    holds.a?.on(a)
    const b = await startNode(prefix, holds.b?.hold)
    holds.b?.on(b)
    const c = await startNode(prefix)
    const adapterOf = (node: RaceNode) => node.started.app.parley.adapter as RedisAdapter
    await until(() => [a, b, c].every((n) => adapterOf(n).liveNodes.length === 2), 5000, 'a, b and c live')
    const proxy = await balance([a, b, c])
    const client = connect(`${proxy.url}/parley`, { transports: ['websocket'], autoConnect: false })
    clients.push(client)
    const heard = listen(client)
    proxy.avoid.add(1)
    proxy.avoid.add(2)
    client.connect()
    await until(() => client.connected && a.connections.length === 1, 3000, 'connect to a')
    const id = client.id!
    proxy.avoid.clear()
    proxy.avoid.add(0)
    proxy.avoid.add(2)
    proxy.cut()
    return { ...heard, a, b, c, id }
  }

  return { scene }
}
