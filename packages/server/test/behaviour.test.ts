import {
  CloseReason,
  type EventPacket,
  type Packet,
  PacketType,
  type ParleyError,
  type TransportName,
} from '@parley/protocol'
import type { ParleyServerOptions, ServerSocket } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { closedAfterEach } from './closed-after-each.js'
import { startServer, until } from './helpers.js'
import { type RawClient, Refused, rawConnect } from './raw-client.js'

const TRANSPORTS = ['websocket', 'sse', 'polling'] as const

const opened = closedAfterEach()

/** A server whose sockets are handed to the test as they connect. */
async function serve(options: ParleyServerOptions = {}) {
  const sockets: ServerSocket[] = []
  opened.started = await startServer(options, (app) => {
    app.parley.on('connection', (socket) => {
      sockets.push(socket)
    })
  })
  return { base: opened.started.base, app: opened.started.app, sockets }
}

async function connect(
  transport: TransportName,
  base: string,
  ...rest: Parameters<typeof rawConnect> extends [unknown, unknown, ...infer R] ? R : never
) {
  const client = await rawConnect(transport, base, ...rest)
  opened.clients.push(client)
  return client
}

const isEvent = (name?: string) => (p: Packet) =>
  p.type === PacketType.EVENT && (name === undefined || p.name === name)
const event = (seq: number, name: string, args: unknown[], ackId = 0): EventPacket =>
  ({ type: PacketType.EVENT, seq, name, args, ackId }) as EventPacket

describe.each(TRANSPORTS)('over %s', (transport) => {
  it('answers HELLO with OPEN (secret sid, public id) and fires connection with the handshake', async () => {
    const { base, sockets } = await serve({ pingInterval: 5000, pingTimeout: 4000 })
    const c = await connect(transport, base, { auth: { token: 'abc' } })
    expect(c.open).toMatchObject({
      type: PacketType.OPEN,
      pingInterval: 5000,
      pingTimeout: 4000,
      maxPayload: 1_000_000,
      transports: ['websocket', 'sse', 'polling'],
      recovered: false,
      ack: 0,
    })
    expect(c.open.sid).toMatch(/^[A-Za-z0-9_-]{21}$/)
    await until(() => sockets.length === 1)
    const socket = sockets[0]!
    expect(socket.transport).toBe(transport)
    expect(socket.connected).toBe(true)
    expect(socket.handshake.auth).toEqual({ token: 'abc' })
    expect(socket.handshake.address).toBe('127.0.0.1')
    expect(socket.handshake.headers.host).toBe(new URL(base).host)
    // A WebSocket's own upgrade headers describe the transport, and are not kept.
    const upgradeHeaders = Object.keys(socket.handshake.headers).filter((name) =>
      /^(upgrade|sec-websocket-.*)$/.test(name),
    )
    expect(upgradeHeaders).toEqual([])
    if (transport === 'websocket') expect(socket.handshake.headers.connection).toBeUndefined()
    // The public id in OPEN is the server socket's id; the sid is another, secret, value.
    expect(c.open.id).toBe(socket.id)
    expect(c.open.id).toMatch(/^[A-Za-z0-9_-]{21}$/)
    expect(socket.id).not.toBe(c.sid)
  })

  it('carries events both ways', async () => {
    const { base, sockets } = await serve()
    const c = await connect(transport, base)
    await until(() => sockets.length === 1)
    const got: unknown[] = []
    sockets[0]!.on('chat', (msg) => got.push(msg))
    await c.send(event(1, 'chat', [{ text: 'hello' }]))
    await until(() => got.length === 1)
    expect(got).toEqual([{ text: 'hello' }])
    sockets[0]!.emit('news', { text: 'hi' }, 2)
    expect(await c.next(isEvent('news'))).toEqual(event(1, 'news', [{ text: 'hi' }, 2]))
  })

  it('acks client events with REPLY, handler failures with ERROR, and events without a handler with PARLEY_NO_HANDLER', async () => {
    const { base, sockets } = await serve()
    const c = await connect(transport, base)
    await until(() => sockets.length === 1)
    const socket = sockets[0]!
    socket.on('add', (a: number, b: number, ack: (sum: number) => void) => ack(a + b))
    socket.on('boom', () => {
      throw new Error('secret detail')
    })
    socket.on('later', async (_x: unknown, ack: (r: string) => void) => {
      await Promise.resolve()
      ack('done')
      ack('ignored')
    })
    await c.send(
      event(1, 'add', [2, 3], 7),
      event(2, 'boom', [], 8),
      event(3, 'later', [1], 9),
      event(4, 'nobody', [], 10),
    )
    expect(await c.next((p) => p.type === PacketType.REPLY && p.ackId === 7)).toMatchObject({ args: [5] })
    const error = await c.next((p) => p.type === PacketType.ERROR && p.ackId === 8)
    expect(error).toMatchObject({ code: 'PARLEY_HANDLER_ERROR', message: 'the handler failed' })
    expect(await c.next((p) => p.type === PacketType.REPLY && p.ackId === 9)).toMatchObject({
      args: ['done'],
    })
    const none = await c.next((p) => p.type === PacketType.ERROR && p.ackId === 10)
    expect(none).toMatchObject({ code: 'PARLEY_NO_HANDLER', message: 'no handler for "nobody"' })
    // Every reply is numbered, in order, once.
    const seqs = c.received
      .filter((p) => p.type === PacketType.REPLY || p.type === PacketType.ERROR)
      .map((p) => (p as { seq: number }).seq)
    expect(seqs).toEqual([1, 2, 3, 4])
  })

  it('waits for client replies, with timeouts', async () => {
    const { base, sockets } = await serve()
    const c = await connect(transport, base)
    await until(() => sockets.length === 1)
    const socket = sockets[0]!
    const reply = socket.emitWithAck('question', 'why?')
    const asked = (await c.next(isEvent('question'))) as EventPacket
    expect(asked.ackId).toBeGreaterThan(0)
    await c.send({ type: PacketType.REPLY, seq: 1, ackId: asked.ackId, args: ['because'] })
    await expect(reply).resolves.toBe('because')

    const callbackArgs: unknown[][] = []
    socket.emit('cb', 1, (...args: unknown[]) => callbackArgs.push(args))
    const cb = (await c.next(isEvent('cb'))) as EventPacket
    await c.send({ type: PacketType.REPLY, seq: 2, ackId: cb.ackId, args: ['a', 'b'] })
    await until(() => callbackArgs.length === 1)
    expect(callbackArgs[0]).toEqual(['a', 'b'])

    const refused = socket.emitWithAck('fail').catch((e: unknown) => e)
    const failing = (await c.next(isEvent('fail'))) as EventPacket
    await c.send({ type: PacketType.ERROR, seq: 3, ackId: failing.ackId, code: 'APP_NOPE', message: 'nope' })
    expect(await refused).toMatchObject({ code: 'APP_NOPE', message: 'nope' })

    await expect(socket.timeout(30).emitWithAck('silence')).rejects.toMatchObject({
      code: 'PARLEY_ACK_TIMEOUT',
    })
    const errors: (ParleyError | null)[] = []
    socket.timeout(30).emit('silence', (err: ParleyError | null) => errors.push(err))
    await until(() => errors.length === 1)
    expect(errors[0]).toMatchObject({ code: 'PARLEY_ACK_TIMEOUT' })
  })

  it('carries binary both ways, nested, as Uint8Array and ArrayBuffer', async () => {
    const { base, sockets } = await serve()
    const c = await connect(transport, base)
    await until(() => sockets.length === 1)
    const payload = {
      name: 'a.bin',
      body: new Uint8Array([1, 2, 3]),
      parts: [new Uint8Array([]), { deep: new Uint8Array([255, 0, 128]).buffer }],
    }
    const got: unknown[] = []
    sockets[0]!.on('file', (f) => got.push(f))
    await c.send(event(1, 'file', [payload, new Uint8Array(300).fill(7)]))
    await until(() => got.length === 1)
    expect(got[0]).toEqual(payload)
    const deep = (got[0] as typeof payload).parts[1] as { deep: ArrayBuffer }
    expect(deep.deep).toBeInstanceOf(ArrayBuffer)
    expect(Object.getPrototypeOf((got[0] as typeof payload).body)).toBe(Uint8Array.prototype)

    sockets[0]!.emit('file', payload)
    const back = (await c.next(isEvent('file'))) as EventPacket
    expect(back.args[0]).toEqual(payload)
  })

  it('delivers 1000 numbered messages each way in order', async () => {
    const { base, sockets } = await serve()
    const c = await connect(transport, base)
    await until(() => sockets.length === 1)
    const got: number[] = []
    sockets[0]!.on('n', (i: number) => got.push(i))
    for (let batch = 0; batch < 10; batch++) {
      const packets = Array.from({ length: 100 }, (_, k) =>
        event(batch * 100 + k + 1, 'n', [batch * 100 + k + 1]),
      )
      await c.send(...packets)
    }
    await until(() => got.length === 1000, 5000, '1000 messages at the server')
    expect(got).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1))

    for (let i = 1; i <= 1000; i++) sockets[0]!.emit('n', i)
    await until(() => c.received.filter(isEvent('n')).length >= 1000, 5000, '1000 messages at the client')
    const seen = c.received.filter(isEvent('n')) as EventPacket[]
    expect(seen.map((p) => p.seq)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1))
    expect(seen.map((p) => p.args[0])).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1))
    // The server acknowledged the client's 1000 packets (cumulatively). Over polling its last
    // ACK, once its timer ran out, waits for the next packet the client gets (docs/protocol.md,
    // Delivery): some come until it did.
    const ticks = setInterval(() => sockets[0]!.emit('tick'), 100)
    try {
      await until(() => c.received.some((p) => p.type === PacketType.ACK && p.ack === 1000))
    } finally {
      clearInterval(ticks)
    }
  })

  it('forgets packets the client acknowledged (ACK trims the replay buffer)', async () => {
    const { base, sockets } = await serve()
    const c = await connect(transport, base)
    await until(() => sockets.length === 1)
    for (let i = 1; i <= 5; i++) sockets[0]!.emit('n', i)
    await until(() => c.received.filter(isEvent('n')).length === 5)
    await c.send({ type: PacketType.ACK, ack: 3 })
    await new Promise((r) => setTimeout(r, 20))
    c.close()
    // Resume claiming nothing was received: only what was not acknowledged comes again.
    const again = await connect(transport, base, { sid: c.sid, ack: 0 })
    expect(again.open).toMatchObject({ sid: c.sid, recovered: true })
    const replayed = [await again.next(isEvent('n')), await again.next(isEvent('n'))] as EventPacket[]
    expect(replayed.map((p) => p.seq)).toEqual([4, 5])
    await expect(again.next(isEvent('n'), 100)).rejects.toThrow()
  })

  it('detaches a transport that does not answer pings, then ends with recovery off', async () => {
    const { base, sockets } = await serve({ pingInterval: 60, pingTimeout: 40 })
    const c = await connect(transport, base, {}, { autoPong: false })
    await until(() => sockets.length === 1)
    const changes: unknown[][] = []
    sockets[0]!.on('transport', (now, before) => changes.push([now, before]))
    await c.next((p) => p.type === PacketType.PING, 1000)
    await until(() => changes.length === 1, 1000, 'transport event')
    expect(changes[0]).toEqual([null, transport])
    expect(sockets[0]!.transport).toBe(null)
    expect(sockets[0]!.connected).toBe(true)

    await opened.started!.app.close()
    const second = await serve({ pingInterval: 60, pingTimeout: 40, recovery: false })
    const reasons: string[] = []
    second.app.parley.on('connection', (s) => s.on('disconnect', (r) => reasons.push(r)))
    const d = await connect(transport, second.base, {}, { autoPong: false })
    await until(() => reasons.length === 1, 1000, 'disconnect')
    expect(reasons).toEqual(['ping timeout'])
    expect(second.app.parley.socketsCount).toBe(0)
    if (transport !== 'polling') {
      // Where a downstream is open, the client hears why.
      expect(await d.next((p) => p.type === PacketType.CLOSE)).toMatchObject({ reason: 'ping timeout' })
    }
  })

  it('keeps a live transport attached while the client answers pings', async () => {
    // A short interval for many pings; a timeout that a busy machine's pauses stay under.
    const { base, sockets } = await serve({ pingInterval: 30, pingTimeout: 150 })
    const c = await connect(transport, base)
    await until(() => sockets.length === 1)
    await until(() => c.received.filter((p) => p.type === PacketType.PING).length >= 4, 2000, 'pings')
    expect(sockets[0]!.transport).toBe(transport)
  })

  it('refuses packets larger than maxPayload', async () => {
    const { base, sockets } = await serve({ maxPayload: 1000 })
    const reasons: string[] = []
    const c = await connect(transport, base)
    await until(() => sockets.length === 1)
    sockets[0]!.on('disconnect', (r) => reasons.push(r))
    const big = JSON.stringify([5, 1, 'x', ['y'.repeat(2000)], 0])
    const status = await c.sendRaw(big)
    if (transport === 'websocket') expect(await c.ended).toBe(1009)
    else expect(status).toBe(413)
    await until(() => reasons.length === 1)
    expect(reasons).toEqual(['payload too large'])
  })

  it('closes the session on a malformed packet and keeps serving others', async () => {
    const { base, sockets } = await serve()
    const reasons: string[] = []
    const c = await connect(transport, base)
    await until(() => sockets.length === 1)
    sockets[0]!.on('disconnect', (r) => reasons.push(r))
    const status = await c.sendRaw('[5,1,"__proto__"')
    if (transport !== 'websocket') expect(status).toBe(400)
    await until(() => reasons.length === 1)
    expect(reasons).toEqual([CloseReason.INVALID_PACKET])
    if (transport !== 'polling') {
      expect(await c.next((p) => p.type === PacketType.CLOSE)).toMatchObject({ reason: 'invalid packet' })
    }
    const other = await connect(transport, base)
    expect(other.open.recovered).toBe(false)
  })

  it('replays what was emitted while the transport was lost, once and in order', async () => {
    const { base, sockets } = await serve()
    const c = await connect(transport, base)
    await until(() => sockets.length === 1)
    const socket = sockets[0]!
    const got: number[] = []
    socket.on('n', (i: number) => got.push(i))
    socket.emit('n', 1)
    socket.emit('n', 2)
    await until(() => c.received.filter(isEvent('n')).length === 2)
    await c.send(event(1, 'n', [1]))
    c.close()
    if (transport === 'websocket') await until(() => socket.transport === null, 1000, 'detach')
    for (let i = 3; i <= 6; i++) socket.emit('n', i)

    const again = await connect(transport, base, { sid: c.sid, ack: 2 })
    expect(again.open).toMatchObject({ sid: c.sid, id: socket.id, recovered: true, ack: 1 })
    expect(socket.recovered).toBe(true)
    expect(socket.transport).toBe(transport)
    // The client resends its unacknowledged packet 1 (a duplicate) and goes on with 2.
    await again.send(event(1, 'n', [1]), event(2, 'n', [2]))
    for (let i = 3; i <= 6; i++) expect(await again.next(isEvent('n'))).toMatchObject({ seq: i, args: [i] })
    await expect(again.next(isEvent('n'), 100)).rejects.toThrow()
    await until(() => got.length === 2)
    expect(got).toEqual([1, 2])
    expect(opened.started!.app.parley.socketsCount).toBe(1)
  })

  it('delivers a CLOSE sent before the first downstream request', async () => {
    opened.started = await startServer({}, (app) => {
      app.parley.on('connection', (socket) => {
        socket.disconnect()
      })
    })
    const c = await connect(transport, opened.started.base)
    expect(await c.next((p) => p.type === PacketType.CLOSE)).toMatchObject({ reason: 'server disconnect' })
    expect(opened.started.app.parley.socketsCount).toBe(0)
  })

  it('answers a resume of an unknown session with a fresh one', async () => {
    const { base, sockets } = await serve()
    const c = await connect(transport, base, { sid: 'V1StGXR8_Z5jdHi6B-myT', ack: 4 })
    expect(c.open).toMatchObject({ recovered: false, ack: 0 })
    expect(c.open.sid).not.toBe('V1StGXR8_Z5jdHi6B-myT')
    await until(() => sockets.length === 1)
    expect(c.open.id).toBe(sockets[0]!.id)
  })

  for (const target of TRANSPORTS.filter((t) => t !== transport)) {
    it(`moves the session to ${target} mid-conversation without loss or duplicates`, async () => {
      const { base, sockets } = await serve()
      const c = await connect(transport, base)
      await until(() => sockets.length === 1)
      const socket = sockets[0]!
      const got: number[] = []
      socket.on('up', (i: number) => got.push(i))
      const changes: unknown[][] = []
      socket.on('transport', (now, before) => changes.push([now, before]))

      for (let i = 1; i <= 5; i++) socket.emit('down', i)
      await c.send(event(1, 'up', [1]), event(2, 'up', [2]))
      await until(() => c.received.filter(isEvent('down')).length === 5)
      // The client has seen 1..3 "in order" so far (pretend 4 and 5 are still in flight).
      const moved = await connect(target, base, { sid: c.sid, ack: 3 })
      expect(moved.open).toMatchObject({ sid: c.sid, id: socket.id, recovered: true, ack: 2 })
      if (transport !== 'polling') expect(await c.next((p) => p.type === PacketType.MOVED)).toBeTruthy()
      expect(changes).toEqual([[target, transport]])
      for (let i = 6; i <= 8; i++) socket.emit('down', i)
      await moved.send(event(2, 'up', [2]), event(3, 'up', [3]))

      const downs = moved.received.filter(isEvent('down')) as EventPacket[]
      await until(() => moved.received.filter(isEvent('down')).length === 5, 3000, 'replay')
      const seqs = (moved.received.filter(isEvent('down')) as EventPacket[]).map((p) => p.seq)
      expect(seqs).toEqual([4, 5, 6, 7, 8])
      expect(downs.length).toBeLessThanOrEqual(5)
      await until(() => got.length === 3)
      expect(got).toEqual([1, 2, 3])
      // The old transport is out of the game.
      if (transport !== 'websocket') {
        expect(await c.send(event(3, 'up', [99]))).toBe(400)
      } else {
        expect(await c.ended).toBe(1000)
      }
    })
  }

  it("refuses the handshake when middleware throws, with its code and message if the code is the application's", async () => {
    opened.started = await startServer({}, (app) => {
      app.parley.use(async (socket) => {
        if ((socket.handshake.auth as { token?: string } | undefined)?.token !== 'good') {
          throw Object.assign(new Error('token expired'), { code: 'AUTH_EXPIRED' })
        }
      })
      app.parley.use(() => {
        throw new Error('second')
      })
    })
    const refusal = await rawConnect(transport, opened.started.base, { auth: { token: 'bad' } }).catch(
      (e) => e,
    )
    expect(refusal).toBeInstanceOf(Refused)
    expect(refusal).toMatchObject({ code: 'AUTH_EXPIRED', message: 'AUTH_EXPIRED: token expired' })
    if (transport !== 'websocket') expect(refusal.status).toBe(403)
    const generic = await rawConnect(transport, opened.started.base, { auth: { token: 'good' } }).catch(
      (e) => e,
    )
    // Without a code of the application's, its message stays in the server's log.
    expect(generic).toMatchObject({
      code: 'PARLEY_REFUSED',
      message: 'PARLEY_REFUSED: refused by middleware',
    })
    expect(opened.started.app.parley.socketsCount).toBe(0)
  })

  it('ends a socket its handshake middleware refused, without a disconnect: it never connected', async () => {
    let refused: ServerSocket | undefined
    const events: string[] = []
    let asked: Promise<unknown> | undefined
    opened.started = await startServer({}, (app) => {
      app.parley.use((socket) => {
        refused = socket
        socket.on('disconnect', (reason) => events.push(reason))
        // A reply the middleware asked for, which can never come.
        asked = socket.emitWithAck('hello?').catch((error: { code: string }) => error.code)
        throw Object.assign(new Error('no'), { code: 'NOPE' })
      })
    })
    const refusal = await rawConnect(transport, opened.started.base).catch((e) => e)
    expect(refusal).toMatchObject({ code: 'NOPE' })
    expect(refused!.connected).toBe(false)
    expect(await asked).toBe('PARLEY_DISCONNECTED')
    expect(refused!.emit('news', 1)).toBe(false)
    expect(events).toEqual([])
  })

  it('sends CLOSE "server shutdown" to every session on app.close()', async () => {
    const { base, app, sockets } = await serve()
    const c = await connect(transport, base)
    await until(() => sockets.length === 1)
    const reasons: string[] = []
    sockets[0]!.on('disconnect', (r) => reasons.push(r))
    // A downstream must be open to hear it: wait for the SSE stream / the next poll.
    sockets[0]!.emit('ready')
    await c.next(isEvent('ready'))
    await new Promise((r) => setTimeout(r, 50))
    const closing = app.close()
    const close = await c.next((p) => p.type === PacketType.CLOSE)
    expect(close).toMatchObject({ reason: 'server shutdown' })
    // By default: come back after a second, plus up to another, drawn for each session.
    const { retryAfter } = close as { retryAfter: number }
    expect(retryAfter).toBeGreaterThanOrEqual(1000)
    expect(retryAfter).toBeLessThanOrEqual(2000)
    await closing
    opened.started = undefined
    expect(reasons).toEqual(['server shutdown'])
    if (transport === 'websocket') expect(await c.ended).toBe(1001)
  })

  it("tells each session the shutdown option's retryAfter, plus its own draw within retrySpread", async () => {
    const { base, app, sockets } = await serve({ shutdown: { retryAfter: 250, retrySpread: 100_000 } })
    const cs: RawClient[] = []
    for (let i = 0; i < 4; i++) cs.push(await connect(transport, base))
    await until(() => sockets.length === 4)
    // Downstreams open, as above.
    for (const [i, socket] of sockets.entries()) {
      socket.emit('ready')
      await cs[i]!.next(isEvent('ready'))
    }
    await new Promise((r) => setTimeout(r, 50))
    const closing = app.close()
    const closes = await Promise.all(cs.map((c) => c.next((p) => p.type === PacketType.CLOSE)))
    await closing
    opened.started = undefined
    const hints = closes.map((p) => {
      expect(p).toMatchObject({ reason: 'server shutdown' })
      return (p as { retryAfter: number }).retryAfter
    })
    for (const hint of hints) {
      expect(hint).toBeGreaterThanOrEqual(250)
      expect(hint).toBeLessThanOrEqual(100_250)
    }
    // Four draws out of 100 001 values: the same four times only once in 10^15 runs.
    expect(new Set(hints).size).toBeGreaterThan(1)
  })
})
