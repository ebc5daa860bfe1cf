// A drain whose store Redis answers too late, while the session's async socket middleware holds
// events the session acknowledged: the freeze took them into the snapshot, which is given up on.
// They run on the draining node, once, after the snapshot is taken back (never on the node the
// client goes to next), and the session ends with CLOSE 'server shutdown'; should the take-back
// not be answered in time either, they run all the same, and the node warns how many. Two Parley
// servers on one real Redis behind a round-robin balancer, and the real client.
import { connect, type Socket } from '@parley/client'
import { redisAdapter } from '@parley/redis'
import type { ServerSocket } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { type RoundRobinProxy, startRoundRobin } from '../../../test/support/round-robin.js'
import { type Started, sleep, startServer, until, within } from '../../server/test/helpers.js'
import { connectedClient, endToEndSuite, type SuiteNode } from './e2e-suite.js'
import { HeldInOrder, holding } from './handoff-support.js'
import type { RedisClientType } from './nodes.js'

interface Node extends SuiteNode {
  /** The `job` events the node's handlers got, from any session. */
  handled: number[]
  /** The sockets that connected here. */
  connections: ServerSocket[]
  /** The node's log lines at warn and above. */
  logs: { msg: string; events?: number; sessions?: number }[]
}

/** Handoff steps of this file's nodes on Redis (the write, its take-back, a seal). */
const handoffStep = (args: string[]) =>
  args[0] === 'EVAL' && args.some((arg) => /^held\d+:handoff:/.test(arg))

/** Holds a's handoff write, and its handoff steps behind it (see `HeldInOrder`). */
const slowWrites = (client: RedisClientType) =>
  new HeldInOrder(client, (args) => args[1]?.includes("'snapshot', ARGV[2]") === true, handoffStep)

describe.skipIf(skipRedisSuites())(
  'events held in a middleware at a drain whose store fails, over Redis',
  () => {
    let proxy: RoundRobinProxy | undefined
    const suite = endToEndSuite<Node>({
      beforeNodes: async () => {
        await proxy?.close()
        proxy = undefined
      },
    })
    const { nodes, clients } = suite
    let prefixes = 0

    /**
     * A node on `prefix` whose `job` middleware waits for `gate` (when given), with a drain that
     * gives a store up after 1 s; its handoff steps held back (see `slowWrites`) when `slow`.
     */
    async function startNode(
      prefix: string,
      gate?: Promise<void>,
      slow = false,
    ): Promise<{ node: Node; held: HeldInOrder | undefined }> {
      const client = await connectedClient(suite.redis.url)
      const held = slow ? slowWrites(client) : undefined
      const node: Node = {
        started: undefined as unknown as Started,
        redis: client,
        handled: [],
        connections: [],
        logs: [],
      }
      node.started = await startServer(
        {
          adapter: redisAdapter({
            client: held ? holding(client, held.hold) : client,
            prefix,
            heartbeatInterval: 300,
            // The server gives the write up (its handoff.timeout) long before the adapter would.
            requestTimeout: 15_000,
          }),
          handoff: { timeout: 1000, retrySpread: 0 },
        },
        (app) => {
          app.parley.on('connection', (socket) => {
            node.connections.push(socket)
            if (gate)
              socket.use(async () => {
                await gate
              })
            socket.on('job', (n: number, ack?: (reply: string) => void) => {
              node.handled.push(n)
              ack?.(`done ${n}`)
            })
          })
        },
        {
          return503OnClosing: false,
          logger: {
            level: 'warn',
            stream: { write: (line: string) => void node.logs.push(JSON.parse(line)) },
          },
        },
      )
      nodes.push(node)
      return { node, held }
    }

    /**
     * Node a (its handoff steps held back, its middleware waiting for `gate`) and b, behind the
     * balancer, and a client connected to a, which has sent three jobs that wait in a's
     * middleware (the third asks for a reply).
     */
    async function setup(gate: Promise<void>) {
      const prefix = `held${prefixes++}`
      const { node: a, held } = await startNode(prefix, gate, true)
      const slow = held!
      const { node: b } = await startNode(prefix)
      proxy = await startRoundRobin([a, b].map((n) => Number(new URL(n.started.base).port)))
      const c: Socket = connect(`${proxy.url}/parley`, {
        transports: ['websocket'],
        autoConnect: false,
        reconnectionDelay: 100,
        reconnectionDelayMax: 300,
      })
      clients.push(c)
      proxy.avoid.add(1)
      c.connect()
      await until(() => c.connected && a.connections.length === 1, 3000, 'connect to a')
      proxy.avoid.clear()
      const first = c.id
      const closes: string[] = []
      c.on('disconnect', (reason: string) => closes.push(reason))
      c.emit('job', 1)
      c.emit('job', 2)
      const reply = c.timeout(8000).emitWithAck('job', 3)
      const socket = a.connections[0]!
      await until(() => socket.eventsInMiddleware === 3, 3000, 'three jobs in the middleware at a')
      return { a, b, c, first, closes, reply, slow }
    }

    it('runs them once, on the draining node, after its late snapshot is taken back', async () => {
      let open = () => {}
      const gate = new Promise<void>((resolve) => {
        open = resolve
      })
      const { a, b, c, first, closes, reply, slow } = await setup(gate)
      proxy!.avoid.add(0)
      const draining = a.started.app.close()
      // Frozen, the snapshot on its way: the middleware of the frozen session lets its job through,
      // too late (the freeze took the three).
      await until(() => slow.held.length === 1, 3000, "a's write")
      open()
      // The drain gives the write up; the take-back waits behind it on the connection.
      await until(() => slow.held.length === 2, 5000, "a's take-back")
      expect(a.handled).toEqual([])
      await slow.runAll()
      expect(await within(reply, 5000, 'the reply to job 3')).toBe('done 3')
      await until(() => a.handled.length === 3, 5000, 'the jobs handled at a')
      await within(draining, 5000, "a's close")
      // The client was told to start anew; the jobs a acknowledged do not go again to b.
      await until(() => c.connected && c.id !== first, 5000, 'a new session on b')
      expect(closes).toEqual(['server shutdown'])
      expect(c.recovered).toBe(false)
      await sleep(200)
      expect(a.handled).toEqual([1, 2, 3])
      expect(b.handled).toEqual([])
      expect(a.logs.filter((line) => line.events !== undefined)).toEqual([])
    }, 35_000)

    it('runs them all the same when the take-back is not answered in time, and warns how many', async () => {
      let open = () => {}
      const gate = new Promise<void>((resolve) => {
        open = resolve
      })
      const { a, b, c, first, closes, reply, slow } = await setup(gate)
      proxy!.avoid.add(0)
      const draining = a.started.app.close()
      await until(() => slow.held.length === 1, 3000, "a's write")
      open()
      // Past the drain's timeout (1 s) and its wait for the take-back (2 s more).
      expect(await within(reply, 6000, 'the reply to job 3')).toBe('done 3')
      expect(a.handled).toEqual([1, 2, 3])
      expect(slow.held.length).toBe(2)
      await slow.runAll()
      await within(draining, 5000, "a's close")
      await until(() => c.connected && c.id !== first, 5000, 'a new session on b')
      expect(closes).toEqual(['server shutdown'])
      await sleep(200)
      expect(b.handled).toEqual([])
      expect(a.logs.filter((line) => line.events !== undefined)).toMatchObject([{ events: 3, sessions: 1 }])
    }, 25_000)
  },
)
