// The Adapter contract across nodes: two Parley servers joined by a test adapter that copies
// everything between them (see cluster-adapter.ts). What passes here is what a Redis adapter
// must do: broadcasts with flags and acks, socket operations, and SSE/polling requests that land
// on a node which does not hold their session (no sticky sessions).
import { connect, type Socket } from '@parley/client'
import { PacketType } from '@parley/protocol'
import type { ServerSocket } from '@parley/server'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type * as protocol from '../../protocol/src/index.js'
import { Cluster } from './cluster-adapter.js'
import { closeApp, type Started, startServer, until, within } from './helpers.js'
import { type RawClient, rawConnect } from './raw-client.js'

let nodes: Started[] = []
const clients: Socket[] = []
const raws: RawClient[] = []

afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect()
  for (const c of raws.splice(0)) c.close()
  await Promise.all(nodes.map((n) => closeApp(n.app)))
  nodes = []
})

/** Two nodes, `a` and `b`, each collecting its sockets. */
async function twoNodes() {
  const cluster = new Cluster()
  const sockets: Record<'a' | 'b', ServerSocket[]> = { a: [], b: [] }
  for (const name of ['a', 'b'] as const) {
    const node = await startServer({ adapter: cluster.adapter(name) }, (app) => {
      app.parley.on('connection', (socket) => {
        sockets[name].push(socket)
      })
    })
    nodes.push(node)
  }
  const [a, b] = nodes as [Started, Started]
  return { cluster, a, b, sockets }
}

/** A client of `node`, on WebSocket; resolves once the node has its socket. */
async function clientOf(node: Started, list: ServerSocket[]) {
  const before = list.length
  const c = connect(node.base, { transports: ['websocket'], reconnection: false })
  clients.push(c)
  await until(() => list.length === before + 1 && c.connected, 3000, 'client')
  return { client: c, socket: list[before]! }
}

function inbox(c: Socket, event = 'news'): unknown[] {
  const got: unknown[] = []
  c.on(event, (value: unknown) => got.push(value))
  return got
}

describe('a two-node adapter', () => {
  it('broadcasts across nodes: rooms, except, the sender left out, and local', async () => {
    const { a, b, sockets } = await twoNodes()
    const a0 = await clientOf(a, sockets.a)
    const a1 = await clientOf(a, sockets.a)
    const b0 = await clientOf(b, sockets.b)
    const [inA0, inA1, inB0] = [inbox(a0.client), inbox(a1.client), inbox(b0.client)]
    a0.socket.join('lobby')
    a1.socket.join(['lobby', 'muted'])
    b0.socket.join('lobby')

    a.app.parley.to('lobby').emit('news', 'to lobby')
    b.app.parley.to('lobby').except('muted').emit('news', 'lobby but muted')
    b0.socket.to('lobby').emit('news', 'from b0')
    a.app.parley.local.emit('news', 'a only')
    b.app.parley.in('lobby').local.emit('news', 'b lobby only')

    await until(() => inA0.length === 4 && inA1.length === 3 && inB0.length === 3, 3000, 'deliveries')
    // Order holds per sender node, not across nodes (a remote broadcast takes a hop).
    expect(inA0.sort()).toEqual(['a only', 'from b0', 'lobby but muted', 'to lobby'])
    expect(inA1.sort()).toEqual(['a only', 'from b0', 'to lobby'])
    expect(inB0.sort()).toEqual(['b lobby only', 'lobby but muted', 'to lobby'])
  })

  it('counts broadcast replies across nodes, and times out on the silent ones', async () => {
    const { a, b, sockets } = await twoNodes()
    const list = [await clientOf(a, sockets.a), await clientOf(b, sockets.b), await clientOf(b, sockets.b)]
    for (const [i, { client, socket }] of list.entries()) {
      socket.join('voters')
      client.on('vote', (ack: (v: string) => void) => ack(`v${i}`))
    }
    const replies = await a.app.parley.timeout(2000).to('voters').emitWithAck('vote')
    expect(replies.sort()).toEqual(['v0', 'v1', 'v2'])

    // Callback form, from the other node; one socket over there stays silent.
    list[2]!.client.off('vote')
    list[2]!.client.on('vote', () => undefined)
    const [error, partial] = await new Promise<[protocol.ParleyError | null, unknown[]]>((resolve) => {
      a.app.parley
        .to('voters')
        .timeout(300)
        .emit('vote', (err: protocol.ParleyError | null, got: unknown[]) => resolve([err, got]))
    })
    expect(error).toMatchObject({ code: 'PARLEY_ACK_TIMEOUT' })
    expect(partial.sort()).toEqual(['v0', 'v1'])

    // Only this node's sockets with `local`.
    expect(await a.app.parley.local.timeout(2000).to('voters').emitWithAck('vote')).toEqual(['v0'])
  })

  it('runs socket operations on every node and fetches plain socket views', async () => {
    const { a, b, sockets } = await twoNodes()
    const a0 = await clientOf(a, sockets.a)
    const b0 = await clientOf(b, sockets.b)
    const b1 = await clientOf(b, sockets.b)
    a0.socket.data.name = 'ada'
    b0.socket.data.name = 'bob'
    a0.socket.join('team')
    b0.socket.join('team')

    const team = await a.app.parley.in('team').fetchSockets()
    expect(team.map((s) => s.id).sort()).toEqual([a0.socket.id, b0.socket.id].sort())
    const bob = team.find((s) => s.id === b0.socket.id)!
    expect(bob.data).toEqual({ name: 'bob' })
    expect(bob.rooms).toEqual(new Set([b0.socket.id, 'team']))
    expect(bob.handshake.transport).toBe('websocket')
    expect((await a.app.parley.local.fetchSockets()).map((s) => s.id)).toEqual([a0.socket.id])
    expect(await b.app.parley.fetchSockets()).toHaveLength(3)

    await a.app.parley.in('team').socketsJoin('b')
    expect(b0.socket.rooms.has('b') && a0.socket.rooms.has('b') && !b1.socket.rooms.has('b')).toBe(true)
    await b.app.parley.in('b').socketsLeave('team')
    expect(a0.socket.rooms.has('team') || b0.socket.rooms.has('team')).toBe(false)

    await a.app.parley.in('b').disconnectSockets()
    await until(() => !a0.socket.connected && !b0.socket.connected, 3000, 'disconnects')
    expect(b1.socket.connected).toBe(true)
  })

  it('encodes a broadcast once per node', async () => {
    const { a, b, cluster, sockets } = await twoNodes()
    const list = [
      await clientOf(a, sockets.a),
      await clientOf(a, sockets.a),
      await clientOf(b, sockets.b),
      await clientOf(b, sockets.b),
    ]
    const boxes = list.map(({ client }) => inbox(client))
    const stringify = vi.spyOn(JSON, 'stringify')
    a.app.parley.emit('news', { text: 'hi' })
    await until(() => boxes.every((box) => box.length === 1), 3000, 'deliveries')
    // prepareEvent encodes [name, args] once; count those encodings of this event.
    const encodings = stringify.mock.calls.filter(([value]) => Array.isArray(value) && value[0] === 'news')
    stringify.mockRestore()
    expect(cluster.shipped).toBe(1)
    expect(encodings).toHaveLength(2)
  })
})

describe.each(['sse', 'polling'] as const)('no sticky sessions over %s', (transport) => {
  it('serves a session from whichever node each request lands on', async () => {
    const { a, b, sockets } = await twoNodes()
    // A load balancer without affinity: every request goes to the other node than the last.
    const ports = [a, b].map((n) => new URL(n.base).port)
    let turn = 0
    const seen: string[] = []
    const roundRobin: typeof fetch = (input, init) => {
      const url = new URL(input instanceof Request ? input.url : String(input))
      url.port = ports[turn++ % 2]!
      seen.push(url.port)
      return fetch(url, init)
    }
    const c = connect(a.base, { transports: [transport], reconnection: false, fetch: roundRobin })
    clients.push(c)
    await until(() => c.connected, 3000, 'connect')
    const all = [...sockets.a, ...sockets.b]
    expect(all).toHaveLength(1)
    const socket = all[0]!
    expect(c.id).toBe(socket.id)
    socket.on('echo', (text: string, ack: (r: string) => void) => ack(`echo ${text}`))
    socket.join('room')
    const got = inbox(c)

    for (let i = 0; i < 5; i++) {
      const echo = await within(c.emitWithAck('echo', `m${i}`), 3000, `the echo of m${i}`)
      expect(echo).toBe(`echo m${i}`)
    }
    // A broadcast from either node reaches it, wherever its requests land.
    a.app.parley.to('room').emit('news', 'from a')
    b.app.parley.to('room').emit('news', 'from b')
    await until(() => got.length === 2, 3000, 'broadcasts')
    expect(got.sort()).toEqual(['from a', 'from b'])
    // Requests did land on both nodes, and the session stayed one.
    expect(new Set(seen).size).toBe(2)
    expect(a.app.parley.socketsCount + b.app.parley.socketsCount).toBe(1)
    expect(socket.recovered).toBe(false)
  })

  it('resumes a session on the node that holds it when the resume lands elsewhere', async () => {
    const { a, b, sockets } = await twoNodes()
    const first = await rawConnect(transport, a.base)
    raws.push(first)
    await until(() => sockets.a.length === 1)
    const socket = sockets.a[0]!
    socket.emit('news', 1)
    await first.next((p) => p.type === PacketType.EVENT)
    first.close()
    socket.emit('news', 2)

    const again = await rawConnect(transport, b.base, { sid: first.sid, ack: 1 })
    raws.push(again)
    expect(again.open).toMatchObject({ sid: first.sid, id: socket.id, recovered: true })
    expect(await again.next((p) => p.type === PacketType.EVENT)).toMatchObject({ seq: 2, args: [2] })
    expect(sockets.b).toHaveLength(0)
  })

  it('answers 400 PARLEY_UNKNOWN_SESSION when no node holds the session', async () => {
    const { b } = await twoNodes()
    const res = await fetch(`${b.base}/${transport === 'sse' ? 'sse' : 'poll'}?v=1&sid=nobodyHasThisSession1`)
    expect(res.status).toBe(400)
    expect(await res.json()).toMatchObject({ code: 'PARLEY_UNKNOWN_SESSION' })
  })
})
