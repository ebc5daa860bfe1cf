// Clients that climb to WebSocket while their node drains: three Parley servers on one Redis
// behind a round-robin proxy, clients of the real client that start on SSE or long-polling and
// probe WebSocket after an upgradeDelay chosen so that their climbs fall just before, during and
// just after the drain's snapshot. Numbered traffic both ways throughout: every client gets every
// broadcast (of another node, and of the draining node until it closed) and every emit the
// draining node's application made to its socket once and in order, and the nodes every client
// emit once.
import { connect, type Socket } from '@parley/client'
import type { TransportName } from '@parley/protocol'
import { defaults, type RedisAdapter, redisAdapter } from '@parley/redis'
import type { ServerSocket } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { memoryStorage } from '../../client/test/helpers.js'
import { closeApp, type Started, sleep, startServer, until, within } from '../../server/test/helpers.js'
import {
  allSeeEachOther,
  balancedSuite,
  connectedClient,
  type SuiteNode,
  unclaimedAtTimeout,
} from './e2e-suite.js'
import { HeldInOrder, holding } from './handoff-support.js'

interface Node extends SuiteNode {
  connections: number
  /** Numbered `up` messages received on this node, by socket id, in order. */
  received: Map<string, number[]>
  log: string[]
  /**
   * A slow store, in ms: `before`, Redis takes that long to run the first snapshot's write (and
   * every command of the node after it, in order); `after`, each answer reaches the drain that
   * much later (stored and claimable meanwhile).
   */
  hold?: { before: number; after: number }
  /**
   * Its heartbeat lapses at the first snapshot's write, as a stalled process's or one whose Redis
   * is slow to answer it would: its record is removed, its heartbeats fail from then on, and the
   * stores' answers reach the drain once the other nodes have dropped it from their live sets.
   * It drains on, alive.
   */
  lapse?: boolean
}

/** The kinds of round (see `round`). */
const KINDS = 4
/** One of each kind (see `round`); more to hunt: `PARLEY_CLIMB_ROUNDS=30`. */
const ROUNDS = Number(process.env.PARLEY_CLIMB_ROUNDS ?? KINDS)
const CLIENTS = 8
/** When the drain starts, after the clients connected (ms). */
const DRAIN_AT = 400

describe.skipIf(skipRedisSuites())('clients climbing to WebSocket while their node drains', () => {
  const { suite, balance } = balancedSuite<Node>()
  const { nodes, clients } = suite

  async function startNode(): Promise<Node> {
    const client = await connectedClient(suite.redis.url)
    const node: Node = {
      started: undefined as unknown as Started,
      redis: client,
      connections: 0,
      received: new Map(),
      log: [],
    }
    const setup = (socket: ServerSocket) => {
      socket.on('up', (n: number) => {
        const list = node.received.get(socket.id) ?? []
        list.push(n)
        node.received.set(socket.id, list)
      })
    }
    node.started = await startServer(
      {
        adapter: (sockets) => {
          // A slow Redis for the snapshot's write: it and every command after it wait, in order.
          let held: HeldInOrder | undefined
          // Or its heartbeats fail, from the first snapshot's write on (see `Node.lapse`): as
          // held ones, but none waits unanswered, which would stop every command of the node's
          // after requestTimeout.
          let lapse: Promise<void> | undefined
          const writes = (args: string[]) => args[0] === 'EVAL' && !!args[1]?.includes("'snapshot', ARGV[2]")
          const beat = (args: string[]) => args[0] === 'EVAL' && !!args[1]?.includes("'ZREMRANGEBYSCORE'")
          const hold = (args: string[]) => {
            if (!lapse && node.lapse && writes(args)) {
              lapse = lapsed(client, adapter.node)
            } else if (!held && node.hold?.before && writes(args)) {
              const slow = new HeldInOrder(client, writes, () => true)
              held = slow
              setTimeout(() => void slow.runAll(), node.hold.before)
            }
            if (lapse && beat(args)) return Promise.reject(new Error('the heartbeat lapses (test)'))
            return held?.hold(args)
          }
          const adapter = redisAdapter({
            client: holding(client, hold),
            heartbeatInterval: 300,
            log: { warn: (_details, message) => void node.log.push(`@parley/redis: ${message}`) },
          })(sockets)
          const handOff = adapter.handOff.bind(adapter)
          adapter.handOff = async (snapshot, ttl) => {
            const stored = await handOff(snapshot, ttl)
            if (node.hold?.after) await sleep(node.hold.after)
            await lapse
            return stored
          }
          return adapter
        },
        // Far longer than a drain whose clients all come back takes, loaded machine or not: one
        // that runs out says so in the log, and fails the round (see `round`).
        handoff: { timeout: 8000, retrySpread: 200 },
      },
      (app) => {
        app.parley.on('connection', (socket) => {
          node.connections++
          void socket.join('room')
          setup(socket)
        })
        app.parley.on('restored', setup)
      },
      {
        return503OnClosing: false,
        pluginTimeout: 60_000,
        logger: { level: 'warn', stream: { write: (line: string) => void node.log.push(line.trim()) } },
      },
    )
    nodes.push(node)
    return node
  }

  /** Node `id`'s record removed, and every other node of the round has dropped it (see `Node.lapse`). */
  async function lapsed(redis: Node['redis'], id: string): Promise<void> {
    await redis.del(`${defaults.prefix}:node:${id}`)
    const others = () =>
      nodes.map((n) => n.started.app.parley.adapter as RedisAdapter).filter((a) => a.node !== id)
    await until(
      () => others().every((a) => !a.liveNodes.includes(id)),
      3000,
      'the others to take the node for gone',
    )
  }

  async function round(r: number): Promise<void> {
    const list = [await startNode(), await startNode(), await startNode()]
    // The victim's drain hands off only once it takes the others for alive; alone, it seals at
    // once. And a node takes the others' broadcasts only once subscribed (before its first beat).
    await allSeeEachOther(list)
    const proxy = await balance(list)
    const victim = list[r % 3]!
    const steady = list[(r + 1) % 3]!
    // Round by round: the store as fast as it goes; slow to write (upgrades reach a frozen
    // session whose snapshot is not stored yet); slow to answer (stored and claimable, its
    // client not told yet); the drained node's heartbeat lapsing (the others take it for gone
    // before its clients are told to resume elsewhere: alive, it is asked to seal all the same,
    // and its drain sees the claims).
    const kind = r % KINDS
    victim.hold = [undefined, { before: 150, after: 0 }, { before: 0, after: 150 }, undefined][kind]
    victim.lapse = kind === 3
    // Every handshake reaches the victim; later requests go round the three.
    for (let i = 0; i < 3; i++) if (list[i] !== victim) proxy.avoid.add(i)
    const got: number[][] = []
    const direct: number[][] = []
    const fromVictimRoom: number[][] = []
    let vroom = 0
    const events: string[][] = []
    const ids: string[] = []
    let drainAt = performance.now() + DRAIN_AT
    const connectedAt: number[] = []
    const made: Socket[] = []
    for (let i = 0; i < CLIENTS; i++) {
      const first: TransportName = i % 2 === 0 ? 'sse' : 'polling'
      // Spread over 400 ms around the drain's start, shifted a little after each round of every kind.
      const offset = -150 + Math.round(((i + (Math.floor(r / KINDS) % 4) / 4) * 400) / CLIENTS)
      const c = connect(`${proxy.url}/parley`, {
        transports: [first, 'websocket'],
        // Its own: the client starts on its first transport, not on one another client remembers.
        storage: memoryStorage(),
        upgradeDelay: Math.max(1, DRAIN_AT + offset),
        upgradeDelayMax: 400,
      })
      clients.push(c)
      made.push(c)
      const mine: number[] = []
      const seen: string[] = []
      got.push(mine)
      events.push(seen)
      c.on('room', (n: number) => mine.push(n))
      const fromVictim: number[] = []
      direct.push(fromVictim)
      c.on('direct', (n: number) => fromVictim.push(n))
      const roomOfVictim: number[] = []
      fromVictimRoom.push(roomOfVictim)
      c.on('vroom', (n: number) => roomOfVictim.push(n))
      const at = () => Math.round(performance.now() - drainAt)
      c.on('disconnect', (reason: string) => seen.push(`disconnect ${reason} @${at()}`))
      c.once('connect', () => connectedAt.push(performance.now()))
      c.on('connect', () => seen.push(`connect @${at()}`))
      c.on('transport', (now: string | null, before: string | null) =>
        seen.push(`${before}->${now} @${at()}`),
      )
    }
    await until(() => made.every((c) => c.connected), 5000, 'connect')
    for (const c of made) ids.push(c.id!)
    proxy.avoid.clear()
    let up = 0
    let down = 0
    // What the victim's application sends each of its sockets while it is connected there,
    // by socket id: each must reach its client, once and in order, until it moves.
    const sent = new Map<string, number[]>(ids.map((id) => [id, []]))
    const traffic = setInterval(() => {
      up++
      for (const c of made) c.emit('up', up)
      down++
      steady.started.app.parley.to('room').emit('room', down)
      for (const [id, socket] of victim.started.app.parley.sockets) {
        const mine = sent.get(id)
        if (!mine || !socket.connected) continue
        mine.push(mine.length + 1)
        socket.emit('direct', mine.length)
      }
      if (!victim.started.app.parley.closed) victim.started.app.parley.to('room').emit('vroom', ++vroom)
    }, 5)
    // Each client probes upgradeDelay after it connected: the drain starts DRAIN_AT after the
    // middle one did, so that the probes fall around it, by their offsets.
    connectedAt.sort((a, b) => a - b)
    drainAt = connectedAt[connectedAt.length >> 1]! + DRAIN_AT
    await sleep(Math.max(0, drainAt - performance.now()))
    const closed = victim.started.app.close()
    proxy.avoid.add(list.indexOf(victim))
    // Bounded by the drain's own timeout (8 s, then 2 s at most for the seals): a guard against a
    // hang. That the drain waited for no claim is asserted below, by what it logged.
    await within(closed, 12_000, 'the drain')
    await sleep(400)
    clearInterval(traffic)
    const report = () => {
      for (const [k, mine] of got.entries()) {
        const missing = Array.from({ length: down }, (_, i) => i + 1).filter((n) => !mine.includes(n))
        const repeated = mine.length - new Set(mine).size
        const upsAt = list.map((n) => n.received.get(ids[k]!)?.length ?? 0)
        const fromVictim = `direct ${direct[k]!.length}/${sent.get(ids[k]!)?.length} vroom ${fromVictimRoom[k]!.length}/${vroom}`
        console.log(
          `round ${r} (${kind}) client ${k}: ${fromVictim}, room ${mine.length}/${down}, ${missing.length} missing (${missing.slice(0, 8)}), ${repeated} repeated, ups ${upsAt}/${up}; ${events[k]!.join(', ')}`,
        )
      }
      for (const [k, n] of list.entries())
        for (const line of n.log) console.log(`node ${k}${n === victim ? ' (drained)' : ''}: ${line}`)
    }
    try {
      // Every session is claimed as its client comes back elsewhere: the drain saw each claim,
      // and gave up waiting for none.
      expect(unclaimedAtTimeout(victim.log), 'the drain gave up waiting for claims').toEqual([])
      await until(() => made.every((c) => c.connected), 8000, 'connected')
      await until(() => got.every((mine) => mine.length >= down), 8000, 'every broadcast')
      const upsOf = (id: string) => list.reduce((k, n) => k + (n.received.get(id)?.length ?? 0), 0)
      await until(() => ids.every((id) => upsOf(id) >= up), 8000, 'every up')
      await sleep(200)
      for (const [k, id] of ids.entries()) {
        const perNode = list.map((n) => n.received.get(id) ?? [])
        for (const mine of perNode)
          expect(mine, `client ${k} up, in order`).toEqual([...mine].sort((a, b) => a - b))
        expect(
          perNode.flat().sort((a, b) => a - b),
          `client ${k} up`,
        ).toEqual(Array.from({ length: up }, (_, i) => i + 1))
        expect(got[k], `client ${k} room`).toEqual(Array.from({ length: down }, (_, i) => i + 1))
        expect(direct[k], `client ${k} direct`).toEqual(sent.get(id))
        expect(fromVictimRoom[k], `client ${k} vroom`).toEqual(Array.from({ length: vroom }, (_, i) => i + 1))
        expect(
          events[k]!.filter((e) => e.startsWith('disconnect')),
          `client ${k} disconnects`,
        ).toEqual([])
      }
    } catch (err) {
      report()
      throw err
    }
    if (process.env.PARLEY_CLIMB_VERBOSE) report()
    for (const c of clients.splice(0)) c.disconnect()
    await sleep(50)
    await proxy.close()
    // The sessions still open are ended first (`closeApp`): a goodbye still on its way through the
    // balancer when it closed leaves its session here, and each node would drain it and wait the
    // whole handoff timeout for a claim that never comes, the others draining too.
    await Promise.all(nodes.splice(0).map((n) => closeApp(n.started.app).then(() => n.redis.destroy())))
  }

  it('loses and repeats nothing either way', async () => {
    const end = performance.now() + 60_000
    for (let r = 0; r < ROUNDS && performance.now() < end; r++) await round(r)
  }, 120_000)
})
