// No sticky sessions, over the network: several Parley nodes, a directory of which node owns
// which session (directory-adapter.ts, what a Redis adapter publishes), and a balancer that sends
// every request and every WebSocket upgrade to the next node. A node that gets a request for a
// session of another node forwards it there itself (HTTP over node:http, WebSocket as a relay),
// and the owner answers as if the client had come to it.
import http, { type IncomingMessage } from 'node:http'
import net from 'node:net'
import { setImmediate } from 'node:timers/promises'
import { connect, type Socket } from '@parley/client'
import { type Packet, PacketType, WS_SUBPROTOCOL } from '@parley/protocol'
import {
  type AdapterFactory,
  MemoryAdapter,
  type ParleyServerOptions,
  type ServerSocket,
} from '@parley/server'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { type RoundRobinProxy, startRoundRobin } from '../../../test/support/round-robin.js'
import { Cluster } from './cluster-adapter.js'
import { Directory } from './directory-adapter.js'
import { closeApp, type Started, sleep, startServer, until, within } from './helpers.js'
import { type RawClient, rawConnect } from './raw-client.js'

const ROUTED = 'x-parley-routed'
const N = 500

interface Seen {
  method: string
  url: string
  routed: boolean
  request: IncomingMessage
}

/** Settles when the connection of a request this node received closes. */
const closed = ({ request }: Seen) =>
  new Promise<void>((resolve) => {
    if (request.socket.destroyed) resolve()
    else request.socket.once('close', () => resolve())
  })

interface Node extends Started {
  name: string
  port: number
  sockets: ServerSocket[]
  /** What the clients of this node's sockets sent with 'up', in arrival order. */
  up: number[]
  /** Every request and upgrade this node received. */
  seen: Seen[]
  closed: boolean
}

let nodes: Node[] = []
let proxy: RoundRobinProxy | undefined
const clients: Socket[] = []
const raws: RawClient[] = []

afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect()
  for (const c of raws.splice(0)) c.close()
  await proxy?.close()
  proxy = undefined
  await Promise.all(nodes.filter((n) => !n.closed).map((n) => closeApp(n.app)))
  nodes = []
})

const range = (n: number, from = 1) => Array.from({ length: n }, (_, i) => i + from)

/** `count` nodes, a, b, c..., with one directory (or the adapters given). */
async function startNodes(
  count: number,
  adapter?: (index: number) => AdapterFactory,
  options: ParleyServerOptions = {},
) {
  const directory = new Directory()
  for (let i = 0; i < count; i++) {
    const name = 'abcd'[i]!
    const node = { name, sockets: [], up: [], seen: [], closed: false } as unknown as Node
    const started = await startServer(
      { ...options, adapter: adapter?.(i) ?? directory.adapter(name) },
      (app) => {
        app.parley.on('connection', (socket) => {
          node.sockets.push(socket)
          socket.on('up', (n: number) => node.up.push(n))
          socket.on('echo', (text: string, ack: (reply: string) => void) => ack(`echo ${text}`))
        })
        const record = (request: IncomingMessage) => {
          node.seen.push({
            method: request.method ?? '',
            url: request.url ?? '',
            routed: request.headers[ROUTED] !== undefined,
            request,
          })
        }
        app.server.prependListener('request', record)
        app.server.prependListener('upgrade', record)
      },
    )
    Object.assign(node, started, { port: Number(new URL(started.base).port) })
    nodes.push(node)
  }
  return { directory, nodes: [...nodes] }
}

function client(url: string, transport: 'websocket' | 'sse' | 'polling'): Socket {
  const c = connect(url, {
    transports: [transport],
    connectTimeout: 3000,
    reconnectionDelay: 50,
    reconnectionDelayMax: 200,
    randomization: 0,
    ackTimeout: 5000,
  })
  clients.push(c)
  return c
}

const owner = () => {
  const found = nodes.filter((n) => n.sockets.some((s) => s.connected))
  expect(found).toHaveLength(1)
  return found[0]!
}
const sessions = () => nodes.reduce((sum, n) => sum + (n.closed ? 0 : n.app.parley.socketsCount), 0)

describe.each(['websocket', 'sse', 'polling'] as const)('no sticky sessions over %s', (transport) => {
  it(`echoes with acks and carries ${N} messages each way exactly once and in order, whichever node each request lands on`, async () => {
    await startNodes(3)
    proxy = await startRoundRobin(nodes.map((n) => n.port))
    const c = client(proxy.url, transport)
    const down: number[] = []
    c.on('down', (n: number) => down.push(n))
    await until(() => c.connected, 5000, 'connect')
    const home = owner()
    const peer = home.sockets[0]!
    expect(c.id).toBe(peer.id)
    if (transport === 'websocket') {
      // One upgrade is one connection: a cut sends the resume, and every message after it,
      // through another node.
      proxy.avoid.add(nodes.indexOf(home))
      proxy.offline = true
      proxy.cut()
      await until(() => !c.connected, 5000, 'the disconnect')
      proxy.offline = false
      await until(() => c.connected, 5000, 'the resume')
      expect(c.recovered).toBe(true)
    }

    for (let i = 0; i < 5; i++) {
      const echo = await within(c.emitWithAck('echo', `m${i}`), 3000, `the echo of m${i}`)
      expect(echo).toBe(`echo m${i}`)
    }
    for (const n of range(N)) {
      c.emit('up', n)
      peer.emit('down', n)
    }
    await until(() => home.up.length >= N && down.length >= N, 15_000, 'every message')
    await sleep(100)
    expect(home.up).toEqual(range(N))
    expect(down).toEqual(range(N))
    expect(sessions()).toBe(1)

    // The other nodes forwarded to the owner, which never forwarded anything back.
    const others = nodes.filter((n) => n !== home)
    expect(others.every((n) => n.seen.every((s) => !s.routed))).toBe(true)
    expect(home.seen.some((s) => s.routed)).toBe(true)
    if (transport !== 'websocket') expect(proxy.forwarded.every((n) => n > 0)).toBe(true)
  }, 55_000)

  it('resumes after a network cut on another node: recovered, and nothing lost', async () => {
    await startNodes(2)
    proxy = await startRoundRobin(nodes.map((n) => n.port))
    const c = client(proxy.url, transport)
    const down: number[] = []
    c.on('down', (n: number) => down.push(n))
    await until(() => c.connected, 5000, 'connect')
    const home = owner()
    const peer = home.sockets[0]!
    const other = nodes.find((n) => n !== home)!
    for (const n of range(10)) {
      c.emit('up', n)
      peer.emit('down', n)
    }
    await until(() => home.up.length === 10 && down.length === 10, 5000, 'the first messages')

    // From now on the balancer sends nothing to the owner: the resume lands on the other node.
    proxy.avoid.add(nodes.indexOf(home))
    const seenBefore = other.seen.length
    // The network goes down long enough for the client to give its transport up.
    proxy.offline = true
    proxy.cut()
    await until(() => !c.connected, 5000, 'the disconnect')
    for (const n of range(10, 11)) {
      c.emit('up', n)
      peer.emit('down', n)
    }
    proxy.offline = false
    await until(() => c.connected, 5000, 'the resume')
    expect(c.recovered).toBe(true)
    expect(c.id).toBe(peer.id)
    await until(() => home.up.length >= 20 && down.length >= 20, 5000, 'what was said meanwhile')
    await sleep(100)
    expect(home.up).toEqual(range(20))
    expect(down).toEqual(range(20))
    expect(other.seen.length).toBeGreaterThan(seenBefore)
    // The resuming HELLO (an upgrade, or a handshake POST without sid) came through the other node.
    const hellos = home.seen.filter(
      (s) =>
        s.routed &&
        (transport === 'websocket' ? s.url.includes('/ws') : s.method === 'POST' && !s.url.includes('sid=')),
    )
    expect(hellos.length).toBeGreaterThan(0)
    expect(other.sockets).toHaveLength(0)
    expect(sessions()).toBe(1)
  }, 35_000)

  it('gives the client a new session (recovered: false) when the owner went away, never a silent gap', async () => {
    // Told to come back after 50 ms and up to 50 more, rather than 1 s and up to 1 s more.
    await startNodes(2, undefined, { shutdown: { retryAfter: 50, retrySpread: 50 } })
    proxy = await startRoundRobin(nodes.map((n) => n.port))
    const c = client(proxy.url, transport)
    await until(() => c.connected, 5000, 'connect')
    const home = owner()
    const first = c.id
    const other = nodes.find((n) => n !== home)!
    const reasons: string[] = []
    c.on('disconnect', (reason) => reasons.push(reason))

    // The balancer takes the node out when it goes.
    proxy.avoid.add(nodes.indexOf(home))
    home.closed = true
    await home.app.close()
    await until(() => reasons.length > 0, 5000, 'the disconnect')
    for (const n of range(3)) c.emit('up', n)
    await until(() => c.connected && other.sockets.length === 1, 5000, 'a new session')
    expect(c.recovered).toBe(false)
    expect(c.id).not.toBe(first)
    expect(c.id).toBe(other.sockets[0]!.id)
    await until(() => other.up.length === 3, 5000, 'what was sent while away')
    expect(other.up).toEqual(range(3))
  }, 25_000)

  it('answers as for an unknown session when the owner cannot be reached, and counts it', async () => {
    const { directory } = await startNodes(2)
    const [a, b] = nodes as [Node, Node]
    const first = await rawConnect(transport, a.base)
    first.close()
    // The owner dies without a word: the directory still names it. (Its sessions ended first:
    // a closing server would wait up to a second for the next GET of a client gone already.)
    const entries = [...directory.owners]
    a.closed = true
    await closeApp(a.app)
    for (const [sid, entry] of entries) directory.owners.set(sid, entry)

    if (transport !== 'websocket') {
      const res = await fetch(`${b.base}/${transport === 'sse' ? 'sse' : 'poll'}?v=1&sid=${first.sid}`)
      expect(res.status).toBe(400)
      expect(await res.json()).toMatchObject({ code: 'PARLEY_UNKNOWN_SESSION' })
    }
    const again = await rawConnect(transport, b.base, { sid: first.sid, ack: 0 })
    raws.push(again)
    expect(again.open.recovered).toBe(false)
    expect(again.sid).not.toBe(first.sid)
    expect(b.app.parley.unreachableOwnerCount).toBe(transport === 'websocket' ? 1 : 2)
  })
})

describe('forwarding', () => {
  it('relays a WebSocket resume to the owner: messages both ways, binary as binary, and the close code', async () => {
    await startNodes(2)
    const [a, b] = nodes as [Node, Node]
    const first = await rawConnect('websocket', a.base)
    const peer = a.sockets[0]!
    const got: unknown[] = []
    peer.on('up', (value: unknown) => got.push(value))
    first.close()

    const again = await rawConnect('websocket', b.base, { sid: first.sid, ack: 0 })
    raws.push(again)
    expect(again.open).toMatchObject({ sid: first.sid, id: peer.id, recovered: true })
    peer.emit('bytes', new Uint8Array([1, 2, 3]))
    const event = (await again.next((p) => p.type === PacketType.EVENT)) as Packet & { args: unknown[] }
    expect(event.args).toEqual([new Uint8Array([1, 2, 3])])
    await again.send({ type: PacketType.EVENT, seq: 1, name: 'up', args: ['hi'], ackId: 0 })
    await until(() => got.length === 1, 3000, 'the message upstream')
    expect(got).toEqual(['hi'])
    expect(b.sockets).toHaveLength(0)
    expect(a.seen.filter((s) => s.routed).map((s) => s.url)).toEqual(['/parley/ws?v=1'])

    // The owner ends the session: its CLOSE, then its close code, reach the client.
    peer.disconnect()
    expect(await again.next((p) => p.type === PacketType.CLOSE)).toMatchObject({
      reason: 'server disconnect',
    })
    expect(await again.ended).toBe(1000)
  })

  it('ends a forwarded event stream on the owner when the client goes away', async () => {
    await startNodes(2)
    const [a, b] = nodes as [Node, Node]
    const first = await rawConnect('sse', a.base)
    raws.push(first)
    // The raw client's own stream went to a; now a second GET, to b, takes the stream over.
    const abort = new AbortController()
    const res = await fetch(`${b.base}/sse?v=1&sid=${first.sid}`, { signal: abort.signal })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/)
    const reader = res.body!.getReader()
    a.sockets[0]!.emit('news', 'through b')
    let text = ''
    while (!text.includes('through b')) {
      const { value, done } = await reader.read()
      if (done) break
      text += new TextDecoder().decode(value)
    }
    expect(text).toContain('"through b"')
    const forwarded = a.seen.filter((s) => s.routed && s.url.startsWith('/parley/sse'))
    expect(forwarded).toHaveLength(1)

    abort.abort()
    await within(closed(forwarded[0]!), 3000, 'the forwarded stream to end on the owner')
    // The session lives on: its client may come back with another GET.
    expect(a.sockets[0]!.connected).toBe(true)
  })

  it('pushes back through a WebSocket relay: a client that stops reading gets volatile emits dropped on the owner', async () => {
    const highWaterMark = 64 * 1024
    await startNodes(2, undefined, { highWaterMark, maxBufferedBytes: 256 * 1024, pingInterval: 60_000 })
    const [a, b] = nodes as [Node, Node]
    const first = await rawConnect('websocket', a.base)
    first.close()
    const peer = a.sockets[0]!
    // A resume through b, then nothing more is read.
    const ws = new WebSocket(`${b.base.replace(/^http/, 'ws')}/ws?v=1`, WS_SUBPROTOCOL)
    ws.on('error', () => {})
    await within(new Promise((resolve) => ws.once('open', resolve)), 5000, 'the WebSocket to open')
    const opened = new Promise((resolve) => ws.once('message', resolve))
    ws.send(JSON.stringify([PacketType.HELLO, { sid: first.sid, ack: 0 }]))
    expect(String(await within(opened, 5000, 'the answer to the resume'))).toContain('"recovered":true')
    ws.pause()

    const payload = 'x'.repeat(4 * 1024)
    let dropped = 0
    // Far more than the socket buffers of two loopback hops hold: the relay must stop reading.
    for (let i = 0; i < 12_000 && dropped === 0; i++) {
      if (!peer.volatile.emit('v', payload)) dropped++
      if (i % 16 === 15) await setImmediate()
    }
    ws.terminate()
    expect(dropped).toBeGreaterThan(0)
    expect(peer.connected).toBe(true)
  })

  it('ends what it forwards when it closes as a handoff does: its clients resume elsewhere, the owner keeps their sessions', async () => {
    await startNodes(2)
    const [a, b] = nodes as [Node, Node]
    const viaWs = await rawConnect('websocket', a.base)
    viaWs.close()
    const relayed = await rawConnect('websocket', b.base, { sid: viaWs.sid, ack: 0 })
    raws.push(relayed)
    expect(relayed.open.recovered).toBe(true)
    const viaSse = await rawConnect('sse', a.base)
    raws.push(viaSse)
    const stream = await fetch(`${b.base}/sse?v=1&sid=${viaSse.sid}`)
    expect(stream.status).toBe(200)
    await until(() => a.seen.filter((s) => s.routed).length === 2, 3000, 'both forwarded')
    const forwarded = a.seen.filter((s) => s.routed)

    b.closed = true
    await b.app.close()
    // CLOSE 'server handoff', as the last message or event, then the end of the relay.
    expect(await relayed.ended).toBe(1001)
    expect(relayed.received.at(-1)).toMatchObject({ type: PacketType.CLOSE, reason: 'server handoff' })
    const events = (await stream.text()).split('\n\n').filter((event) => event.startsWith('data: '))
    expect(JSON.parse(events.at(-1)!.slice(6)).slice(0, 2)).toEqual([PacketType.CLOSE, 'server handoff'])
    await Promise.all(forwarded.map(closed))
    expect(a.sockets.map((s) => s.connected)).toEqual([true, true])
  })

  it('gives up on an owner that accepts but never answers the upgrade, within handshakeTimeout', async () => {
    // A "node" that takes connections and says nothing.
    const silent = net.createServer(() => {})
    const held: net.Socket[] = []
    silent.on('connection', (socket) => held.push(socket))
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    const { port } = silent.address() as net.AddressInfo
    try {
      const { directory } = await startNodes(1, undefined, { handshakeTimeout: 300 })
      const [b] = nodes as [Node]
      directory.owners.set('heldBySilentNode0001', { node: 'silent', url: `http://127.0.0.1:${port}` })
      const started = performance.now()
      const again = await rawConnect('websocket', b.base, { sid: 'heldBySilentNode0001', ack: 0 })
      raws.push(again)
      expect(again.open.recovered).toBe(false)
      expect(performance.now() - started).toBeGreaterThanOrEqual(250)
      expect(held.length).toBe(1)
      expect(b.app.parley.unreachableOwnerCount).toBe(1)
    } finally {
      for (const socket of held) socket.destroy()
      await new Promise<void>((resolve) => silent.close(() => resolve()))
    }
  })

  it('does not try again for a while an owner it could not reach: the requests of its other sessions are answered at once', async () => {
    const silent = net.createServer(() => {})
    const held: net.Socket[] = []
    silent.on('connection', (socket) => held.push(socket))
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    const { port } = silent.address() as net.AddressInfo
    try {
      const { directory } = await startNodes(1, undefined, { handshakeTimeout: 300 })
      const [b] = nodes as [Node]
      const url = `http://127.0.0.1:${port}`
      for (const sid of ['heldBySilentNode0001', 'heldBySilentNode0002', 'heldBySilentNode0003'])
        directory.owners.set(sid, { node: 'silent', url })
      const first = await rawConnect('websocket', b.base, { sid: 'heldBySilentNode0001', ack: 0 })
      raws.push(first)
      expect(held.length).toBe(1)
      // Its other sessions: no connection tried, each answered as for an owner out of reach.
      const second = await rawConnect('websocket', b.base, { sid: 'heldBySilentNode0002', ack: 0 })
      raws.push(second)
      expect(second.open.recovered).toBe(false)
      const poll = await fetch(`${b.base}/poll?v=1&sid=heldBySilentNode0003`)
      expect(poll.status).toBe(400)
      expect(await poll.json()).toMatchObject({ code: 'PARLEY_UNKNOWN_SESSION' })
      expect(held.length).toBe(1)
      expect(b.app.parley.unreachableOwnerCount).toBe(3)
    } finally {
      for (const socket of held) socket.destroy()
      await new Promise<void>((resolve) => silent.close(() => resolve()))
    }
  })

  it('tries again at once an owner whose connections were reset: only a wait that ran out is remembered', async () => {
    // A reset is what a live owner's stale kept-alive connection gives too, and it costs no wait:
    // remembered, that owner's clients would get new sessions for a while.
    const resetting = net.createServer((socket) => socket.resetAndDestroy())
    let connections = 0
    resetting.on('connection', () => connections++)
    await new Promise<void>((resolve) => resetting.listen(0, '127.0.0.1', resolve))
    const { port } = resetting.address() as net.AddressInfo
    try {
      const { directory } = await startNodes(1)
      const [b] = nodes as [Node]
      const url = `http://127.0.0.1:${port}`
      for (const sid of ['heldByResetNode00001', 'heldByResetNode00002'])
        directory.owners.set(sid, { node: 'resetting', url })
      const first = await fetch(`${b.base}/poll?v=1&sid=heldByResetNode00001`)
      expect(first.status).toBe(400)
      const tried = connections
      expect(tried).toBeGreaterThan(0)
      const second = await fetch(`${b.base}/poll?v=1&sid=heldByResetNode00002`)
      expect(second.status).toBe(400)
      expect(connections).toBeGreaterThan(tried)
      expect(b.app.parley.unreachableOwnerCount).toBe(2)
    } finally {
      await new Promise<void>((resolve) => resetting.close(() => resolve()))
    }
  })

  it.each([
    ['over the network', undefined],
    ['through the adapter', (cluster: Cluster) => (index: number) => cluster.adapter('ab'[index]!)],
  ] as const)(
    'sends answers on %s with no warning of too many listeners on the response (one per answer, on stderr)',
    async (_, adapter) => {
      const warned: string[] = []
      const onWarning = (warning: Error) => warned.push(warning.name)
      process.on('warning', onWarning)
      try {
        await startNodes(2, adapter?.(new Cluster()))
        proxy = await startRoundRobin(nodes.map((n) => n.port))
        const c = client(proxy.url, 'polling')
        await until(() => c.connected, 5000, 'connect')
        for (let i = 0; i < 4; i++)
          expect(await within(c.emitWithAck('echo', `m${i}`), 3000, `the echo of m${i}`)).toBe(`echo m${i}`)
        // Polls and POSTs reached both nodes: the owner answered some through the other one.
        expect(proxy.forwarded.every((n) => n > 1)).toBe(true)
        // Node emits its warnings on the next tick, before the event loop's next turn.
        await setImmediate()
        expect(warned.filter((name) => name === 'MaxListenersExceededWarning')).toEqual([])
      } finally {
        process.off('warning', onWarning)
      }
    },
  )

  it("forwards a held poll with the client's end-to-end headers, and lets it go when the client does", async () => {
    await startNodes(2)
    const [a, b] = nodes as [Node, Node]
    const first = await rawConnect('polling', a.base)
    first.close()
    const request = http.get(`${b.base}/poll?v=1&sid=${first.sid}`, {
      headers: { Connection: 'keep-alive, x-hop', 'x-hop': 'one hop only', 'x-app': 'kept', Cookie: 'c=1' },
    })
    request.on('error', () => {})
    await until(() => a.seen.some((s) => s.routed), 3000, 'the forwarded poll')
    const forwarded = a.seen.find((s) => s.routed)!
    expect(forwarded.url).toBe(`/parley/poll?v=1&sid=${first.sid}`)
    const headers = forwarded.request.headers
    expect(headers).toMatchObject({
      host: `127.0.0.1:${b.port}`,
      'x-app': 'kept',
      cookie: 'c=1',
      'x-forwarded-for': '127.0.0.1',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': `127.0.0.1:${b.port}`,
      [ROUTED]: '1',
    })
    expect(headers['x-hop']).toBeUndefined()

    request.destroy()
    await within(closed(forwarded), 3000, 'the forwarded request to end on the owner')
    expect(a.sockets[0]!.connected).toBe(true)
  })

  it.each(['websocket', 'sse', 'polling'] as const)(
    'never forwards a forwarded request again (%s): no loop between two nodes that each think the other owns it',
    async (transport) => {
      const urls: string[] = []
      // Each node answers that the other owns every session.
      const liar =
        (index: number): AdapterFactory =>
        (sockets) => {
          const adapter = new MemoryAdapter(sockets)
          return Object.assign(adapter, {
            sessionOwner: () => ({ node: `n${1 - index}`, url: urls[1 - index]! }),
          })
        }
      await startNodes(2, liar)
      const [a, b] = nodes as [Node, Node]
      urls.push(`http://127.0.0.1:${a.port}`, `http://127.0.0.1:${b.port}`)

      if (transport !== 'websocket') {
        const res = await fetch(
          `${a.base}/${transport === 'sse' ? 'sse' : 'poll'}?v=1&sid=somebodyElsesSession1`,
        )
        expect(res.status).toBe(400)
        expect(await res.json()).toMatchObject({ code: 'PARLEY_UNKNOWN_SESSION' })
      }
      // A resume: b gets it from a, marked, and handles it itself (a new session).
      const again = await rawConnect(transport, a.base, { sid: 'somebodyElsesSession2', ack: 0 })
      raws.push(again)
      expect(again.open.recovered).toBe(false)
      expect(b.sockets).toHaveLength(1)
      expect(a.sockets).toHaveLength(0)
      // Whatever a forwarded to b, b answered itself: nothing came back to a.
      expect(a.seen.some((s) => s.routed)).toBe(false)
      expect(b.seen.some((s) => !s.routed)).toBe(false)
      expect(b.seen.filter((s) => s.routed).length).toBeGreaterThanOrEqual(transport === 'websocket' ? 1 : 2)
    },
  )
})
