// Rooms, broadcasts and socket operations across three nodes behind nginx round-robin: every
// request below runs on one node and must reach the sockets of all three, through Redis.
import type { Socket } from '@parley/client'
import type { TransportName } from '@parley/protocol'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { client, closeClients, next, until } from '../../packages/client/test/helpers.js'
import { ask, type Cluster, nodeOf, nudge, skipClusterSuites, startCluster } from './cluster.js'

const options = { connectTimeout: 5000, ackTimeout: 8000 }
const transports: TransportName[] = ['websocket', 'sse', 'polling']

interface Member {
  socket: Socket
  transport: TransportName
  node: string
  id: string
  /** Every event received, by name, in order. */
  got: Map<string, unknown[]>
}

interface Described {
  id: string
  rooms: string[]
  data: { node: string }
}

describe.skipIf(skipClusterSuites())('rooms and broadcasts across three nodes', () => {
  let cluster: Cluster
  const members: Member[] = []

  /** Opens a client over `transport` and learns where its session lives. */
  async function member(transport: TransportName): Promise<Member> {
    const socket = client(cluster.url, { ...options, transports: [transport] })
    const got = new Map<string, unknown[]>()
    for (const event of ['news', 'said', 'barrier']) {
      got.set(event, [])
      socket.on(event, (payload: unknown) => got.get(event)!.push(payload))
    }
    await next(socket, 'connect', 10_000)
    const node = await nodeOf(socket)
    socket.on('question', (from: string, reply: (value: unknown) => void) =>
      reply({ id: socket.id, node, from }),
    )
    return { socket, transport, node, id: socket.id!, got }
  }

  beforeAll(async () => {
    cluster = await startCluster()
    // Two clients per transport, and more until every node owns some session (round-robin
    // spreads them; bounded all the same).
    for (let i = 0; i < 6; i++) {
      members.push(await member(transports[i % 3]!))
      await nudge(cluster)
    }
    for (let i = 0; i < 9 && new Set(members.map((m) => m.node)).size < 3; i++) {
      members.push(await member(transports[i % 3]!))
      await nudge(cluster)
    }
    expect(new Set(members.map((m) => m.node)).size).toBe(3)
    // An SSE client whose stream reached another node before that node could find the new
    // session's owner starts again with a new session (it is told: PARLEY_UNKNOWN_SESSION); the
    // first one waits out its recovery window. Such leftovers would count below: end them.
    const ids = new Set(members.map((m) => m.id))
    const leftovers = (await ask<Described[]>(members[0]!.socket, 'fetch', {})).filter((s) => !ids.has(s.id))
    if (leftovers.length > 0) {
      await ask(members[0]!.socket, 'disconnectSockets', { rooms: leftovers.map((s) => s.id) })
    }
  }, 60_000)
  afterAll(async () => {
    closeClients()
    await cluster?.stop()
  })

  /** Members that own a session on each node: one per node. */
  const onePerNode = () => cluster.nodes.map((n) => members.find((m) => m.node === n.name)!)

  /**
   * Waits until everyone got `barrier` number `n`, sent after the broadcast under test from the
   * same node: whatever the broadcast would have brought is there by then.
   */
  async function barrier(from: Member, n: number): Promise<void> {
    await ask(from.socket, 'broadcast', { event: 'barrier', payload: n })
    await until(
      () => members.every((m) => m.got.get('barrier')!.includes(n)),
      10_000,
      `barrier ${n} at every member`,
    )
  }

  it('makes sockets on every node join rooms, and broadcasts to a room reach its members once', async () => {
    const [a, b, c] = onePerNode()
    const inRoom = [a!, b!, c!]
    for (const m of inRoom) await ask(m.socket, 'join', 'blue')
    const outsider = members.find((m) => !inRoom.includes(m))!

    await ask(outsider.socket, 'broadcast', { rooms: ['blue'], event: 'news', payload: 'to blue' })
    await barrier(outsider, 1)
    for (const m of members) {
      expect(m.got.get('news')).toEqual(inRoom.includes(m) ? ['to blue'] : [])
    }

    // except: blue minus one member, sent from a node of another member.
    await ask(a!.socket, 'join', 'gold')
    await ask(c!.socket, 'broadcast', {
      rooms: ['blue'],
      except: ['gold'],
      event: 'news',
      payload: 'blue not gold',
    })
    await barrier(c!, 2)
    expect(a!.got.get('news')).toEqual(['to blue'])
    expect(b!.got.get('news')).toEqual(['to blue', 'blue not gold'])
    expect(c!.got.get('news')).toEqual(['to blue', 'blue not gold'])

    // From a socket to its room: the sender is left out, the others on other nodes hear it.
    await ask(b!.socket, 'say', { room: 'blue', payload: 'from b' })
    await barrier(b!, 3)
    expect(a!.got.get('said')).toEqual(['from b'])
    expect(b!.got.get('said')).toEqual([])
    expect(c!.got.get('said')).toEqual(['from b'])
  })

  it('drops volatile broadcasts rather than duplicate them, and delivers them to WebSocket members', async () => {
    for (const m of members) m.got.set('news', [])
    await ask(members[0]!.socket, 'broadcast', { event: 'news', payload: 'volatile', volatile: true })
    await barrier(members[0]!, 4)
    for (const m of members) {
      expect(m.got.get('news')!.length).toBeLessThanOrEqual(1)
      if (m.transport === 'websocket') expect(m.got.get('news')).toEqual(['volatile'])
    }
  })

  it('counts acknowledgements over all nodes', async () => {
    const asker = members[members.length - 1]!
    const all = await ask<{ ok: boolean; replies: { id: string; node: string; from: string }[] }>(
      asker.socket,
      'ask',
      { timeout: 5000 },
    )
    expect(all.ok).toBe(true)
    expect(all.replies.map((r) => r.id).sort()).toEqual(members.map((m) => m.id).sort())
    expect(new Set(all.replies.map((r) => r.node))).toEqual(new Set(cluster.nodes.map((n) => n.name)))
    expect(all.replies.every((r) => r.from === asker.node)).toBe(true)

    const blue = await ask<{ ok: boolean; replies: { id: string }[] }>(asker.socket, 'ask', {
      rooms: ['blue'],
      timeout: 5000,
    })
    expect(blue.ok).toBe(true)
    expect(blue.replies.map((r) => r.id).sort()).toEqual(
      onePerNode()
        .map((m) => m.id)
        .sort(),
    )

    // Nobody in the room: settled at once with no replies, not at the timeout.
    const started = performance.now()
    expect(await ask(asker.socket, 'ask', { rooms: ['nobody'], timeout: 5000 })).toEqual({
      ok: true,
      replies: [],
    })
    expect(performance.now() - started).toBeLessThan(4000)
  })

  it('fetches, joins, leaves and disconnects sockets on every node', async () => {
    const [a, b, c] = onePerNode()
    const from = members.find((m) => m !== a && m !== b && m !== c) ?? a!

    const everyone = await ask<Described[]>(from.socket, 'fetch', {})
    expect(everyone.map((s) => s.id).sort()).toEqual(members.map((m) => m.id).sort())
    for (const m of members) expect(everyone.find((s) => s.id === m.id)?.data).toEqual({ node: m.node })
    const blue = await ask<Described[]>(from.socket, 'fetch', { rooms: ['blue'] })
    expect(blue.map((s) => s.id).sort()).toEqual([a!.id, b!.id, c!.id].sort())
    expect(blue.find((s) => s.id === a!.id)?.rooms).toEqual(['blue', 'gold', a!.id].sort())

    // socketsJoin / socketsLeave from one node move sockets of all three.
    await ask(from.socket, 'socketsJoin', { rooms: ['blue'], room: 'red' })
    const red = await ask<Described[]>(c!.socket, 'fetch', { rooms: ['red'] })
    expect(red.map((s) => s.id).sort()).toEqual([a!.id, b!.id, c!.id].sort())
    await ask(b!.socket, 'socketsLeave', { rooms: ['gold'], room: 'red' })
    const redNow = await ask<Described[]>(a!.socket, 'fetch', { rooms: ['red'] })
    expect(redNow.map((s) => s.id).sort()).toEqual([b!.id, c!.id].sort())

    // disconnectSockets ends those sessions wherever they live; the others stay.
    const ended = [b!, c!]
    const gone = ended.map((m) => next(m.socket, 'disconnect', 10_000))
    await ask(a!.socket, 'disconnectSockets', { rooms: ['red'] })
    await Promise.all(gone)
    const left = await ask<Described[]>(a!.socket, 'fetch', {})
    expect(left.map((s) => s.id).sort()).toEqual(
      members
        .filter((m) => !ended.includes(m))
        .map((m) => m.id)
        .sort(),
    )
    for (const m of members) if (!ended.includes(m)) expect(m.socket.connected).toBe(true)
  })
})
