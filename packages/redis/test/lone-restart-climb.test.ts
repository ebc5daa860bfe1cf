// A lone node restarted (a deployment of one node on Redis): its drain stores every session and
// seals its tail at once, and the process that starts next on the same address takes each over
// when its client comes back. Clients that climb to WebSocket around the drain, an async socket
// middleware that keeps events waiting at the freeze, numbered traffic both ways: nothing the
// old process acknowledged is lost, nothing runs twice.
import { connect, type Socket } from '@parley/client'
import type { TransportName } from '@parley/protocol'
import { redisAdapter } from '@parley/redis'
import type { ServerSocket } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { memoryStorage } from '../../client/test/helpers.js'
import { type Started, sleep, startServer, until, within } from '../../server/test/helpers.js'
import { connectedClient, endToEndSuite, type SuiteNode, unclaimedAtTimeout } from './e2e-suite.js'

interface Node extends SuiteNode {
  /** Numbered `up` messages handled on this node, by socket id, in order. */
  received: Map<string, number[]>
  restored: number
  /** What the node logged at level warn and above. */
  log: string[]
}

const CLIENTS = 6

describe.skipIf(skipRedisSuites())('a lone node restarted while its clients climb', () => {
  const suite = endToEndSuite<Node>()
  const { nodes, clients } = suite

  async function startNode(port?: number): Promise<Node> {
    const client = await connectedClient(suite.redis.url)
    const node: Node = {
      started: undefined as unknown as Started,
      redis: client,
      received: new Map(),
      restored: 0,
      log: [],
    }
    const setup = (socket: ServerSocket) => {
      // Slower than the client sends: events wait behind it at the freeze (acknowledged, not
      // handled yet), and go with the snapshot.
      socket.use(async () => {
        await sleep(7)
      })
      socket.on('up', (n: number) => {
        const list = node.received.get(socket.id) ?? []
        list.push(n)
        node.received.set(socket.id, list)
      })
    }
    node.started = await startServer(
      {
        adapter: redisAdapter({ client, heartbeatInterval: 300 }),
        handoff: { timeout: 8000, retrySpread: 100 },
      },
      (app) => {
        app.parley.on('connection', setup)
        app.parley.on('restored', (socket) => {
          node.restored++
          setup(socket)
        })
      },
      {
        return503OnClosing: false,
        pluginTimeout: 60_000,
        logger: { level: 'warn', stream: { write: (line: string) => void node.log.push(line.trim()) } },
      },
      port,
    )
    nodes.push(node)
    return node
  }

  // 40 s: a drain that waits out its timeout fails on what it logged, not on the test's time.
  it('loses and repeats nothing either way', async () => {
    const old = await startNode()
    const port = Number(new URL(old.started.base).port)
    const made: Socket[] = []
    const got: number[][] = []
    for (let i = 0; i < CLIENTS; i++) {
      const first: TransportName = i % 2 === 0 ? 'sse' : 'polling'
      const c = connect(old.started.base, {
        transports: [first, 'websocket'],
        storage: memoryStorage(),
        upgradeDelay: 200 + i * 60,
        upgradeDelayMax: 400,
        reconnectionDelayMax: 300,
      })
      clients.push(c)
      made.push(c)
      const mine: number[] = []
      got.push(mine)
      c.on('direct', (n: number) => mine.push(n))
    }
    await until(() => made.every((c) => c.connected), 5000, 'connect')
    const ids = made.map((c) => c.id!)
    const sent = new Map<string, number[]>(ids.map((id) => [id, []]))
    let up = 0
    let current = old
    const traffic = setInterval(() => {
      up++
      for (const c of made) c.emit('up', up)
      for (const [id, socket] of current.started.app.parley.sockets) {
        const mine = sent.get(id)
        if (!mine || !socket.connected) continue
        mine.push(mine.length + 1)
        socket.emit('direct', mine.length)
      }
    }, 5)
    await sleep(350)
    // Bounded by the drain's own timeout (8 s, then 2 s at most for the seals): a guard against a
    // hang. Alone, the drain seals at once rather than wait for claims no node could make: it
    // never gives up waiting for them.
    await within(old.started.app.close(), 12_000, 'the drain alone')
    expect(unclaimedAtTimeout(old.log), 'the drain alone waited for claims').toEqual([])
    const next = await startNode(port)
    current = next
    await until(() => next.restored === CLIENTS && made.every((c) => c.connected), 8000, 'taken over')
    await sleep(300)
    clearInterval(traffic)
    const upsOf = (id: string) => [old, next].reduce((k, n) => k + (n.received.get(id)?.length ?? 0), 0)
    await until(() => ids.every((id) => upsOf(id) >= up), 8000, 'every up')
    await until(() => ids.every((id, k) => got[k]!.length >= sent.get(id)!.length), 8000, 'every direct')
    await sleep(200)
    for (const [k, id] of ids.entries()) {
      expect(made[k]!.recovered, `client ${k} recovered`).toBe(true)
      const handled = [...(old.received.get(id) ?? []), ...(next.received.get(id) ?? [])]
      expect(handled, `client ${k} up`).toEqual(Array.from({ length: up }, (_, i) => i + 1))
      expect(got[k], `client ${k} direct`).toEqual(sent.get(id))
    }
  }, 50_000)
})
