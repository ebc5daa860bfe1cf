// Backpressure: a client that stops reading costs the server a bounded number of bytes on every
// transport. Measured with socket.bufferedAmount (bytes held for the client), not RSS.
import http from 'node:http'
import type { Socket } from 'node:net'
import { setImmediate as tick } from 'node:timers/promises'
import { decodeText, type OpenPacket, PacketType, type TransportName, WS_SUBPROTOCOL } from '@parley/protocol'
import type { ParleyServerOptions, ServerSocket } from '@parley/server'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { closeApp, type Started, sleep, startServer, until } from './helpers.js'
import { rawConnect } from './raw-client.js'
import { head, RawHttp } from './raw-http.js'

const TRANSPORTS = ['websocket', 'sse', 'polling'] as const
const KiB = 1024

let started: Started | undefined
const cleanups: (() => void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0)) c()
  await closeApp(started?.app)
  started = undefined
})

/** A client that completed its handshake and then stopped reading (or polling). */
interface Stalled {
  sid: string
  /** Acknowledges numbered packets without having read them (a client that lies). */
  ack(n: number): Promise<void>
  /** Sends a GET for the session and resolves with the body (SSE: read until it ends). */
  get(): Promise<string>
}

/** A WebSocket session whose client, once it has its OPEN, reads nothing more. */
async function stalledWebSocket(base: string): Promise<{ ws: WebSocket; sid: string }> {
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/ws?v=1`, WS_SUBPROTOCOL)
  ws.on('error', () => {})
  cleanups.push(() => ws.terminate())
  await new Promise((resolve) => ws.once('open', resolve))
  const open = new Promise<OpenPacket>((resolve) =>
    ws.once('message', (data) => {
      const decoded = decodeText(String(data))
      if (decoded.ok && decoded.packet.type === PacketType.OPEN) resolve(decoded.packet)
    }),
  )
  ws.send('[8,{}]')
  const { sid } = await open
  // From here on nothing is read from the socket: the kernel buffers fill, then ws's queue.
  ws.pause()
  return { ws, sid }
}

async function stalled(transport: TransportName, base: string): Promise<Stalled> {
  const endpoint = `${base}/${transport === 'sse' ? 'sse' : 'poll'}`
  if (transport === 'websocket') {
    const { ws, sid } = await stalledWebSocket(base)
    return {
      sid,
      ack: async (n) => void ws.send(`[4,${n}]`),
      get: () => Promise.reject(new Error('no GET on a WebSocket')),
    }
  }
  const sid = await handshakePost(endpoint)
  const url = `${endpoint}?v=1&sid=${sid}`
  if (transport === 'sse') {
    // Open the event stream and never read it.
    await new Promise<void>((resolve) => {
      const req = http.get(url, (response) => {
        response.pause()
        cleanups.push(() => response.destroy())
        resolve()
      })
      req.on('error', () => {})
    })
  }
  // polling: no GET at all.
  return {
    sid,
    ack: async (n) => {
      await fetch(url, { method: 'POST', body: `[4,${n}]` }).then((r) => r.arrayBuffer())
    },
    get: async () => (await fetch(url)).text(),
  }
}

/** Opens a session on an SSE or polling `endpoint` by its handshake POST alone; its sid. */
async function handshakePost(endpoint: string): Promise<string> {
  const res = await fetch(`${endpoint}?v=1`, { method: 'POST', body: '[8,{}]' })
  const decoded = decodeText(await res.text())
  if (!decoded.ok || decoded.packet.type !== PacketType.OPEN) throw new Error('no OPEN')
  return decoded.packet.sid
}

/** Starts the test's server with `options`, with the sockets that connect to it, in order. */
async function serve(options: ParleyServerOptions): Promise<Started & { sockets: ServerSocket[] }> {
  const sockets: ServerSocket[] = []
  started = await startServer(options, (app) => {
    app.parley.on('connection', (s) => {
      sockets.push(s)
    })
  })
  return { ...started, sockets }
}

/** A server with small limits, and a stalled client of `transport`. */
async function setup(transport: TransportName, options: ParleyServerOptions) {
  const { base, sockets } = await serve({ pingInterval: 60_000, pingTimeout: 60_000, ...options })
  const client = await stalled(transport, base)
  await until(() => sockets.length === 1)
  const socket = sockets[0]!
  const reasons: string[] = []
  socket.on('disconnect', (r) => reasons.push(r))
  return { socket, client, reasons }
}

interface Flood {
  volatile?: boolean
  /** Acknowledge every numbered packet as it goes (the client lies: it read nothing). */
  lyingAcks?: Stalled
  size: number
  /** Stop after this many bytes in total. */
  budget: number
}

/** Emits until the socket is cut or the budget is spent; returns what it saw. */
async function flood(socket: ServerSocket, { volatile, lyingAcks, size, budget }: Flood) {
  const payload = 'x'.repeat(size)
  let max = 0
  let sent = 0
  let dropped = 0
  let numbered = 0
  for (let i = 0; i * size < budget && socket.connected; i++) {
    const ok = volatile ? socket.volatile.emit('v', payload) : socket.emit('n', payload)
    if (ok && !volatile) numbered++
    if (ok) sent++
    else dropped++
    if (socket.connected) max = Math.max(max, socket.bufferedAmount)
    if (i % 16 === 15) {
      if (lyingAcks) await lyingAcks.ack(numbered)
      // Let the sockets move bytes, so that the kernel's buffers fill and ours are what is left.
      await tick()
    }
  }
  return { max, sent, dropped }
}

describe('socket.bufferedAmount', () => {
  it('counts bytes kept until the client acknowledges them', async () => {
    started = await startServer()
    const sockets: ServerSocket[] = []
    started.app.parley.on('connection', (s) => {
      sockets.push(s)
    })
    const client = await rawConnect('websocket', started.base)
    cleanups.push(() => client.close())
    await until(() => sockets.length === 1)
    const socket = sockets[0]!
    expect(socket.bufferedAmount).toBe(0)
    socket.emit('n', 'x'.repeat(1000))
    socket.emit('n', 'é'.repeat(10))
    expect(socket.bufferedAmount).toBeGreaterThan(1000)
    await client.next((p) => p.type === PacketType.EVENT && p.seq === 2)
    await client.send({ type: PacketType.ACK, ack: 2 })
    await until(() => socket.bufferedAmount === 0, 2000, 'the ACK to trim the buffer')
  })
})

describe.each(TRANSPORTS)('a client that stops reading, over %s', (transport) => {
  it('gets volatile emits dropped past highWaterMark, and stays connected', async () => {
    const highWaterMark = 64 * KiB
    const { socket, reasons } = await setup(transport, { highWaterMark, maxBufferedBytes: 256 * KiB })
    const result = await flood(socket, { volatile: true, size: 4 * KiB, budget: 48 * 1024 * KiB })
    expect(result.dropped).toBeGreaterThan(0)
    // One packet may pass the mark (the check comes before the send).
    expect(result.max).toBeLessThan(highWaterMark + 5 * KiB)
    expect(reasons).toEqual([])
    expect(socket.connected).toBe(true)
  })

  it("is cut with 'slow consumer' when what it has not acknowledged passes maxBufferedBytes", async () => {
    const maxBufferedBytes = 256 * KiB
    const { socket, reasons } = await setup(transport, { maxBufferedBytes })
    const result = await flood(socket, { size: 4 * KiB, budget: 4 * maxBufferedBytes })
    expect(reasons).toEqual(['slow consumer'])
    expect(result.max).toBeLessThanOrEqual(maxBufferedBytes)
    expect(result.sent).toBeLessThan(4 * maxBufferedBytes)
  })

  it("is cut with 'slow consumer' when the transport's own queue passes the limit, even with acks", async () => {
    const maxBufferedBytes = 256 * KiB
    const { socket, client, reasons } = await setup(transport, { maxBufferedBytes })
    // The client acknowledges what it never read: only the transport's queue can tell.
    const result = await flood(socket, {
      size: 4 * KiB,
      budget: 48 * 1024 * KiB,
      lyingAcks: client,
    })
    expect(reasons).toEqual(['slow consumer'])
    // Bounded by the limit plus the packets sent between two checks.
    expect(result.max).toBeLessThanOrEqual(maxBufferedBytes + 5 * KiB)
    if (transport !== 'websocket') {
      // What waited is dropped; only the CLOSE is left, for the next GET.
      const body = await client.get()
      const lines = body.split('\n').filter((l) => l.includes('['))
      expect(lines).toEqual([expect.stringContaining('[1,"slow consumer"')])
    }
  })
})

describe.each(['sse', 'polling'] as const)('a client that talks but never reads, over %s', (transport) => {
  it("is cut with 'slow consumer' when the ACKs it gets for its events pass maxBufferedBytes", async () => {
    // The server acknowledges every 32 events it receives; with no GET, its ACKs wait in the
    // transport, and a client that keeps sending grows that queue for as long as it likes.
    const maxBufferedBytes = 1024
    const { base, sockets } = await serve({ pingInterval: 60_000, pingTimeout: 60_000, maxBufferedBytes })
    const endpoint = `${base}/${transport === 'sse' ? 'sse' : 'poll'}`
    const url = `${endpoint}?v=1&sid=${await handshakePost(endpoint)}`
    await until(() => sockets.length === 1)
    const socket = sockets[0]!
    const reasons: string[] = []
    socket.on('disconnect', (r) => reasons.push(r))

    // 32 000 events (1 000 ACKs), 1 000 to a POST; nothing is ever sent to the client otherwise.
    let seq = 0
    let max = 0
    for (let post = 0; post < 32 && socket.connected; post++) {
      const lines = Array.from({ length: 1000 }, () => `[5,${++seq},"e",[],0]`)
      await fetch(url, { method: 'POST', body: lines.join('\n') }).then((r) => r.arrayBuffer())
      if (socket.connected) max = Math.max(max, socket.bufferedAmount)
    }
    expect(reasons).toEqual(['slow consumer'])
    // Bounded by the limit and the ACKs of one POST.
    expect(max).toBeLessThanOrEqual(maxBufferedBytes + 32 * 16)
  })
})

describe('an answer its client does not read, once it has ended', () => {
  /**
   * A session of `transport` whose downstream GET (on a connection of its own) is never read,
   * with `count` packets of 100 KB sent to it.
   */
  async function unreadGet(transport: 'sse' | 'polling', count: number, pingTimeout = 500) {
    // Answers of up to 8 MB: more than the kernel's buffers take from a client that reads nothing.
    const { app, base, sockets } = await serve({
      pingInterval: 60_000,
      pingTimeout,
      maxPayload: 8_000_000,
    })
    const endpoint = `${base}/${transport === 'sse' ? 'sse' : 'poll'}`
    const sid = await handshakePost(endpoint)
    await until(() => sockets.length === 1)
    const socket = sockets[0]!
    const big = 'x'.repeat(100_000)
    for (let i = 0; i < count; i++) socket.emit('big', big)
    // The server's end of each connection, by the client's port: a client that does not read
    // cannot see its connection cut (the cut waits behind the bytes it did not read).
    const connections = new Map<number, Socket>()
    app.server.on('connection', (connection: Socket) => {
      connections.set(connection.remotePort!, connection)
    })
    const raw = await RawHttp.open(Number(new URL(base).port))
    cleanups.push(() => raw.destroy())
    raw.socket.pause()
    raw.write(head('GET', `/parley/${transport === 'sse' ? 'sse' : 'poll'}?v=1&sid=${sid}&ack=0`))
    await sleep(200)
    const cut = () => connections.get(raw.socket.localPort!)?.destroyed === true
    return { socket, sid, raw, endpoint, cut }
  }

  it('over SSE, a stream the session replaced is cut once nothing of it moved for pingTimeout', async () => {
    // What the old stream held was no longer counted: a client that resumed again and again
    // without reading left a stream of up to maxBufferedBytes behind each time, for good.
    const { socket, sid, endpoint, cut } = await unreadGet('sse', 70)
    expect(socket.bufferedAmount).toBeGreaterThan(4_000_000)
    const resumed = await fetch(`${endpoint}?v=1`, { method: 'POST', body: `[8,{"sid":"${sid}","ack":0}]` })
    expect(decodeText(await resumed.text())).toMatchObject({ ok: true, packet: { recovered: true } })
    expect(cut()).toBe(false)
    await until(cut, 3000, 'the replaced stream cut')
    expect(socket.connected).toBe(true)
  })

  it('over SSE, the stream of a session that ended is cut once nothing of it moved for pingTimeout', async () => {
    const { socket, cut } = await unreadGet('sse', 70)
    socket.disconnect()
    expect(cut()).toBe(false)
    await until(cut, 3000, 'the ended stream cut')
  })

  it('over polling, an answer is cut once nothing of it moved for pingTimeout', async () => {
    const { cut } = await unreadGet('polling', 70)
    expect(cut()).toBe(false)
    await until(cut, 3000, 'the unread answer cut')
  })

  it('a client that reads slowly gets every byte of an ended stream', async () => {
    // pingTimeout eight times the pauses below, which a loaded machine stretches (with 500 ms, a
    // 200 ms pause that ran late left the stream still for pingTimeout, and it was cut; with
    // 1000 ms, once at load 9); the slow reading still lasts about as long as pingTimeout.
    const { socket, raw } = await unreadGet('sse', 70, 2000)
    socket.disconnect()
    // A byte now and then keeps it moving: never silent for pingTimeout.
    let received = 0
    raw.socket.on('data', (chunk: string) => {
      received += chunk.length
    })
    for (let i = 0; i < 12 && !raw.isClosed; i++) {
      // Each turn reads something (a fixed moment of reading may let nothing through on a busy
      // machine), then nothing for a while.
      const before = received
      raw.socket.resume()
      await until(() => received > before || raw.isClosed, 5000, 'a few bytes read')
      raw.socket.pause()
      await sleep(250)
    }
    raw.socket.resume()
    await until(() => raw.isClosed, 5000, 'the stream to end')
    expect(raw.received).toContain('[1,"server disconnect"')
    expect(received).toBeGreaterThan(7_000_000)
  })
})

describe('a WebSocket its client left for another transport', () => {
  it('is cut at once when it holds what the client never read, not after the closing handshake', async () => {
    const { app, base, sockets } = await serve({ pingInterval: 60_000, maxBufferedBytes: 64 * 1024 * 1024 })
    const connections = new Map<number, Socket>()
    app.server.on('connection', (connection: Socket) => {
      connections.set(connection.remotePort!, connection)
    })
    const { ws, sid } = await stalledWebSocket(base)
    await until(() => sockets.length === 1)
    const socket = sockets[0]!
    // More than the kernel's buffers take from a client that reads nothing: the rest waits in ws.
    const big = 'x'.repeat(100_000)
    for (let i = 0; i < 150; i++) socket.emit('big', big)
    await sleep(200)
    const old = connections.get((ws as unknown as { _socket: Socket })._socket.localPort!)!
    expect(old.destroyed).toBe(false)

    // The client resumes on polling (a new network, say): the old WebSocket's closing handshake
    // would hold every byte it never read for ws's close timeout (30 s); a client resuming in a
    // loop would pile those up.
    const resumed = await fetch(`${base}/poll?v=1`, {
      method: 'POST',
      body: `[8,{"sid":"${sid}","ack":0}]`,
    })
    expect(decodeText(await resumed.text())).toMatchObject({ ok: true, packet: { recovered: true } })
    await until(() => old.destroyed, 1000, 'the old WebSocket cut')
    expect(socket.connected).toBe(true)
  })
})
