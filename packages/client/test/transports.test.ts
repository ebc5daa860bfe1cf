// One suite of behaviours, run over each transport forced alone, against the real server.
import { ErrorCode, type ParleyError } from '@parley/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import {
  client,
  closeAll,
  next,
  parleyOf,
  type ServerSocket,
  startServer,
  type TestServer,
  until,
} from './helpers.js'

let server: TestServer | undefined

afterEach(closeAll)

/** A server that echoes `echo`, answers `ask`, fails `fail`, and hands out its sockets. */
async function echoServer(options: Record<string, unknown> = {}) {
  const sockets: ServerSocket[] = []
  const received: unknown[] = []
  server = await startServer((app) => {
    parleyOf(app).on('connection', (socket: ServerSocket) => {
      sockets.push(socket)
      socket.on('echo', (...args: unknown[]) => socket.emit('echo', ...args))
      socket.on('ask', (value: unknown, ack: (r: unknown) => void) => ack({ got: value }))
      socket.on('fail', () => {
        throw new Error('handler failed')
      })
      socket.on('count', (n: number) => received.push(n))
      socket.on('silent', () => {})
    })
  }, options)
  return { sockets, received }
}

/**
 * The server's socket of `socket`'s session: not simply the first, since an attempt given up on a
 * slow machine leaves a session of its own behind before the one the client holds.
 */
function serverSide(sockets: readonly ServerSocket[], socket: { id: string | undefined }): ServerSocket {
  const found = sockets.find((s) => s.id === socket.id)
  if (!found) throw new Error(`no server socket for ${socket.id}`)
  return found
}

describe.each(['websocket', 'sse', 'polling'] as const)('over %s alone', (transport) => {
  const opts = { transports: [transport] }

  it('connects and reports the session and transport', async () => {
    const { sockets } = await echoServer()
    // One attempt, however slow: an attempt given up after the helper's short connectTimeout
    // (800 ms; the first SSE handshake of a cold process on a loaded machine can take longer)
    // leaves its session at the server, and the next attempt makes a second one.
    const socket = client(server!.url, { ...opts, connectTimeout: 10_000 })
    await next(socket, 'connect', 10_000)
    expect(socket.connected).toBe(true)
    expect(socket.transport).toBe(transport)
    // The public id, the same on both sides (the sid stays inside the session).
    expect(socket.id).toMatch(/^[A-Za-z0-9_-]{21}$/)
    await until(() => sockets.length === 1)
    expect(socket.id).toBe(sockets[0]!.id)
    expect(socket.recovered).toBe(false)
  })

  it('sends events both ways', async () => {
    await echoServer()
    const socket = client(server!.url, opts)
    socket.emit('echo', { text: 'hello' }, 2)
    expect(await next(socket, 'echo')).toEqual([{ text: 'hello' }, 2])
  })

  it('gets replies with emitWithAck, callbacks and timeout()', async () => {
    await echoServer()
    const socket = client(server!.url, opts)
    expect(await socket.emitWithAck('ask', 1)).toEqual({ got: 1 })
    const viaCallback = await new Promise((resolve) => socket.emit('ask', 2, resolve))
    expect(viaCallback).toEqual({ got: 2 })
    const errorFirst = await new Promise((resolve) =>
      socket.timeout(1000).emit('ask', 3, (err: unknown, reply: unknown) => resolve([err, reply])),
    )
    expect(errorFirst).toEqual([null, { got: 3 }])
  })

  it('rejects with PARLEY_ACK_TIMEOUT and with the handler error', async () => {
    await echoServer()
    const socket = client(server!.url, opts)
    await expect(socket.timeout(200).emitWithAck('silent')).rejects.toMatchObject({
      code: ErrorCode.ACK_TIMEOUT,
    })
    await expect(socket.emitWithAck('fail')).rejects.toMatchObject({ code: ErrorCode.HANDLER_ERROR })
  })

  it("answers the server's requests through the ack function", async () => {
    const { sockets } = await echoServer()
    const socket = client(server!.url, opts)
    socket.on('question', (n: number, ack: (r: unknown) => void) => ack(n * 2))
    await next(socket, 'connect')
    await expect(serverSide(sockets, socket).emitWithAck('question', 21)).resolves.toBe(42)
  })

  it('carries binary both ways, nested', async () => {
    await echoServer()
    const socket = client(server!.url, opts)
    const bytes = new Uint8Array([0, 1, 2, 253, 254, 255])
    const buffer = new Uint8Array([9, 8, 7]).buffer
    socket.emit('echo', { file: { body: bytes }, list: [buffer] })
    const [got] = (await next(socket, 'echo')) as [{ file: { body: Uint8Array }; list: ArrayBuffer[] }]
    expect(got.file.body).toBeInstanceOf(Uint8Array)
    expect([...got.file.body]).toEqual([...bytes])
    expect(got.list[0]).toBeInstanceOf(ArrayBuffer)
    expect([...new Uint8Array(got.list[0]!)]).toEqual([9, 8, 7])
  })

  it('carries values as JSON.stringify writes them, both ways, as the READMEs say', async () => {
    const { sockets } = await echoServer()
    const socket = client(server!.url, opts)
    const sent = [
      undefined,
      Number.NaN,
      Number.NEGATIVE_INFINITY,
      new Date(0),
      new Map([[1, 2]]),
      new Set([1]),
      new Error('no'),
      { gone: undefined, method() {}, kept: 1 },
      [undefined, () => 1, Symbol('s')],
      { toJSON: () => 'mine' },
    ]
    const arrived = [
      null,
      null,
      null,
      '1970-01-01T00:00:00.000Z',
      {},
      {},
      {},
      { kept: 1 },
      [null, null, null],
      'mine',
    ]
    // To the server and back: the server's handler got what the client gets.
    socket.emit('echo', ...sent)
    expect(await next(socket, 'echo')).toEqual(arrived)
    expect(await socket.emitWithAck('ask', new Date(0))).toEqual({ got: '1970-01-01T00:00:00.000Z' })
    // A reply of no argument resolves with undefined; one of undefined, with what arrives: null.
    await until(() => sockets.length === 1)
    serverSide(sockets, socket).on('none', (ack: () => void) => ack())
    serverSide(sockets, socket).on('undefined', (ack: (reply: undefined) => void) => ack(undefined))
    expect(await socket.emitWithAck('none')).toBeUndefined()
    expect(await socket.emitWithAck('undefined')).toBeNull()
  })

  it('delivers 500 messages each way in order, exactly once', async () => {
    const { sockets, received } = await echoServer()
    const socket = client(server!.url, opts)
    const got: number[] = []
    socket.on('n', (n: number) => got.push(n))
    await next(socket, 'connect')
    for (let i = 0; i < 500; i++) {
      socket.emit('count', i)
      serverSide(sockets, socket).emit('n', i)
    }
    await until(() => got.length >= 500 && received.length >= 500, 8000, '500 messages')
    expect(got).toEqual([...Array(500).keys()])
    expect(received).toEqual([...Array(500).keys()])
  })

  it('queues emits made before connecting and sends them in order', async () => {
    const { received } = await echoServer()
    const socket = client(server!.url, { ...opts, autoConnect: false })
    socket.emit('count', 1)
    socket.emit('count', 2)
    socket.volatile.emit('count', 99)
    socket.connect()
    await until(() => received.length >= 2, 3000, 'queued messages')
    await new Promise((r) => setTimeout(r, 50))
    expect(received).toEqual([1, 2])
  })

  it('throws PARLEY_QUEUE_FULL past maxQueuedMessages', async () => {
    await echoServer()
    const socket = client(server!.url, { ...opts, autoConnect: false, maxQueuedMessages: 2 })
    socket.emit('count', 1)
    socket.emit('count', 2)
    expect(() => socket.emit('count', 3)).toThrow(expect.objectContaining({ code: ErrorCode.QUEUE_FULL }))
    await expect(socket.emitWithAck('ask', 3)).rejects.toMatchObject({ code: ErrorCode.QUEUE_FULL })
  })

  it('refuses reserved event names', async () => {
    await echoServer()
    const socket = client(server!.url, { ...opts, autoConnect: false })
    expect(() => socket.emit('connect')).toThrow(
      expect.objectContaining({ code: ErrorCode.RESERVED_EVENT_NAME }),
    )
  })

  it("reports the middleware's refusal code and message, and does not retry", async () => {
    server = await startServer((app) => {
      parleyOf(app).use(async (socket: ServerSocket) => {
        if ((socket.handshake.auth as { token?: string } | undefined)?.token !== 'good') {
          throw Object.assign(new Error('bad token'), { code: 'AUTH_FAILED' })
        }
      })
    })
    const socket = client(server.url, { ...opts, auth: { token: 'bad' } })
    const [error, willRetry] = (await next(socket, 'connect_error')) as [ParleyError<string>, boolean]
    expect(error.code).toBe('AUTH_FAILED')
    expect(error.message).toBe('bad token')
    expect(willRetry).toBe(false)
    expect(socket.active).toBe(false)
  })

  it('asks the auth function again on every connect', async () => {
    const seen: unknown[] = []
    server = await startServer((app) => {
      parleyOf(app).use(async (socket: ServerSocket) => {
        seen.push(socket.handshake.auth)
      })
    })
    let n = 0
    const socket = client(server.url, { ...opts, auth: async () => ({ n: ++n }) })
    await next(socket, 'connect')
    socket.disconnect()
    socket.connect()
    await next(socket, 'connect')
    expect(seen).toEqual([{ n: 1 }, { n: 2 }])
  })

  it('gives an auth function that never settles connectTimeout, then tries again', async () => {
    const seen: unknown[] = []
    server = await startServer((app) => {
      parleyOf(app).use(async (socket: ServerSocket) => {
        seen.push(socket.handshake.auth)
      })
    })
    // The first call hangs, as a token fetch that never answers would.
    let n = 0
    const auth = () => (++n === 1 ? new Promise<never>(() => {}) : Promise.resolve({ n }))
    const socket = client(server.url, { ...opts, auth, connectTimeout: 300, reconnectionDelay: 50 })
    const failures: string[] = []
    socket.on('connect_error', (error, willRetry) => failures.push(`${error.code}:${willRetry}`))
    await next(socket, 'connect')
    expect(failures).toEqual(['PARLEY_HANDSHAKE_TIMEOUT:true'])
    expect(seen).toEqual([{ n: 2 }])
  })

  it('disconnect() tells the server and rejects pending replies', async () => {
    const { sockets } = await echoServer()
    const socket = client(server!.url, opts)
    await next(socket, 'connect')
    const reason = next(serverSide(sockets, socket) as never, 'disconnect')
    const pending = socket.emitWithAck('silent')
    const local = next(socket, 'disconnect')
    socket.disconnect()
    expect(await local).toEqual(['client disconnect'])
    await expect(pending).rejects.toMatchObject({ code: ErrorCode.DISCONNECTED })
    expect((await reason)[0]).toBe('client disconnect')
    expect(socket.connected).toBe(false)
  })

  it('disconnect() while the server opens the session ends that session too', async () => {
    const ends: string[] = []
    let opened = 0
    let arrived: () => void = () => {}
    const helloArrived = new Promise<void>((resolve) => {
      arrived = resolve
    })
    server = await startServer((app) => {
      const parley = parleyOf(app)
      // A slow middleware: the client gives up while its handshake is under way.
      parley.use(async () => {
        arrived()
        await new Promise((resolve) => setTimeout(resolve, 100))
      })
      parley.on('connection', (socket) => {
        opened++
        socket.on('disconnect', (reason: string) => ends.push(reason))
      })
    })
    const socket = client(server.url, opts)
    await helloArrived
    socket.disconnect()
    // And again at once: one session more, not one left behind.
    socket.connect()
    await next(socket, 'connect')
    // Not after the server's recovery window: the client said goodbye.
    await until(() => ends.length === 1, 2000, 'the first session to end')
    expect(ends).toEqual(['client disconnect'])
    expect(opened).toBe(2)
  })

  it('stays disconnected after the server disconnects it, and asks nothing more of the session', async () => {
    const { sockets } = await echoServer()
    // The session's GETs that reach the server, before and after its CLOSE was sent: the answer
    // that brings the CLOSE must not be followed by another poll or stream.
    const gets: { afterClose: boolean; sid: string }[] = []
    let closed = false
    server!.app.server.prependListener('request', (req: { method?: string; url?: string }) => {
      const sid = req.method === 'GET' && /[?&]sid=([^&]+)/.exec(req.url ?? '')?.[1]
      if (sid) gets.push({ afterClose: closed, sid })
    })
    const socket = client(server!.url, opts)
    await next(socket, 'connect')
    // Over HTTP, the first poll or the stream may still be on its way.
    if (transport !== 'websocket') await until(() => gets.length > 0, 3000, 'the first GET')
    const ours = new Set(gets.map((g) => g.sid))
    expect(ours.size).toBe(transport === 'websocket' ? 0 : 1)
    closed = true
    serverSide(sockets, socket).disconnect()
    const [reason] = await next(socket, 'disconnect')
    expect(reason).toBe('server disconnect')
    expect(socket.active).toBe(false)
    // A GET sent on the answer would have gone out before the listeners ran; an echo round trip
    // of a second client lets it reach the server first.
    const other = client(server!.url, opts)
    await next(other, 'connect')
    other.emit('echo', 1)
    await next(other, 'echo')
    expect(gets.filter((g) => g.afterClose && ours.has(g.sid))).toEqual([])
  })

  it('drops volatile emits while disconnected and sends them while connected', async () => {
    const { received } = await echoServer()
    const socket = client(server!.url, opts)
    await next(socket, 'connect')
    socket.volatile.emit('count', 7)
    await until(() => received.length === 1, 2000, 'volatile message')
    expect(received).toEqual([7])
  })

  it('chains volatile and timeout(ms) in either order: sent volatile, timed, error-first', async () => {
    await echoServer()
    const socket = client(server!.url, opts)
    await next(socket, 'connect')
    const results: unknown[][] = []
    socket.timeout(2000).volatile.emit('ask', 1, (...result: unknown[]) => results.push(result))
    await until(() => results.length === 1, 3000, 'reply')
    expect(results[0]).toEqual([null, { got: 1 }])
    expect(await socket.volatile.timeout(2000).emitWithAck('ask', 2)).toEqual({ got: 2 })
    // Nobody answers 'silent': the timeout of the chain ends the wait.
    await expect(socket.volatile.timeout(100).emitWithAck('silent')).rejects.toMatchObject({
      code: ErrorCode.ACK_TIMEOUT,
    })
    // Volatile: dropped while disconnected, and the error-first callback hears so at once,
    // though not before emit returned.
    socket.disconnect()
    socket.timeout(60_000).volatile.emit('ask', 3, (...result: unknown[]) => results.push(result))
    expect(results).toHaveLength(1)
    await new Promise((resolve) => setTimeout(resolve, 0))
    // (A numbered emit would wait for the next connect.)
    expect(results[1]).toMatchObject([{ code: ErrorCode.DISCONNECTED }])
  })

  it('rejects at once, with PARLEY_DISCONNECTED, the reply of a volatile emit it dropped', async () => {
    const { sockets } = await echoServer()
    const socket = client(server!.url, { ...opts, ackTimeout: 300 })
    await next(socket, 'connect')
    serverSide(sockets, socket).disconnect()
    await next(socket, 'disconnect')
    const outcome = (reply: Promise<unknown>) =>
      Promise.race([
        reply.then(
          () => 'resolved',
          (error: ParleyError<string>) => error.code,
        ),
        // Well before ackTimeout: the reply is known never to come.
        new Promise((resolve) => setTimeout(resolve, 150, 'pending')),
      ])
    expect(await outcome(socket.volatile.emitWithAck('ask', 1))).toBe(ErrorCode.DISCONNECTED)
    const idle = client(server!.url, { ...opts, autoConnect: false, ackTimeout: 300 })
    expect(await outcome(idle.volatile.emitWithAck('ask', 2))).toBe(ErrorCode.DISCONNECTED)
  })
})
