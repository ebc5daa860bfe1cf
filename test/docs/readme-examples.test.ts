/**
 * The READMEs' examples, run as a user would run them: the snippet's server on 127.0.0.1 port 0,
 * the real client, and the outcome the text around the snippet promises.
 */
import { type ParleyError as ClientError, connect, type Socket } from '@parley/client'
import parley, { ParleyError, type ServerSocket } from '@parley/server'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { closeApp, within } from '../../packages/server/test/helpers.js'

const transports = ['websocket', 'sse', 'polling'] as const

let app: FastifyInstance | undefined
const clients: Socket[] = []

afterEach(async () => {
  for (const socket of clients.splice(0)) socket.disconnect()
  await closeApp(app)
  app = undefined
})

/** The snippet's `app.listen({ port: 3000 })`, on a free loopback port: the URL of its mount. */
async function listen(server: FastifyInstance): Promise<string> {
  app = server
  await server.listen({ port: 0, host: '127.0.0.1' })
  const address = server.server.address()
  if (!address || typeof address === 'string') throw new Error('no port')
  return `http://127.0.0.1:${address.port}/parley`
}

/** `connect(url, options)` as the snippets call it, kept to be closed after the test. */
function open(...args: Parameters<typeof connect>): Socket {
  const socket = connect(...args)
  clients.push(socket)
  return socket
}

/** The next `event` of `socket`, with its arguments. */
function next<T extends unknown[]>(socket: Socket, event: string, what = event): Promise<T> {
  return within(
    new Promise<T>((resolve) =>
      socket.once(event as 'connect', ((...args: T) => resolve(args)) as () => void),
    ),
    5000,
    what,
  )
}

describe.each(transports)('README quick start over %s', (transport) => {
  it('echoes the chat back with the sender id and acknowledges it with { ok: true }', async () => {
    const server = Fastify()
    await server.register(parley, { path: '/parley' })
    server.parley.on('connection', (socket) => {
      socket.on('chat', (msg: { text: string }, ack?: (reply: { ok: boolean }) => void) => {
        socket.emit('chat', { from: socket.id, text: msg.text })
        ack?.({ ok: true })
      })
    })
    const url = await listen(server)

    const socket = open(url, { transports: [transport] })
    await next(socket, 'connect')
    expect(socket.transport).toBe(transport)
    const echoed = next<[{ from: string; text: string }]>(socket, 'chat')
    const reply = await socket.timeout(5000).emitWithAck('chat', { text: 'hello' })
    expect(reply).toEqual({ ok: true })
    const [msg] = await echoed
    expect(msg).toEqual({ from: socket.id, text: 'hello' })
    // The callback form, untyped as in the quick start: its parameters need no annotations.
    const called = new Promise<unknown[]>((resolve) =>
      socket.timeout(5000).emit('chat', { text: 'hi' }, (err, reply) => resolve([err, reply])),
    )
    expect(await within(called, 5000, 'the error-first callback')).toEqual([null, { ok: true }])
  })
})

describe.each(transports)('server README: handshake middleware over %s', (transport) => {
  it('gives the client the code and message of a refusal with a code of its own, and stops it', async () => {
    const server = Fastify()
    await server.register(parley, { path: '/parley' })
    server.parley.use(async (socket) => {
      const { token } = (socket.handshake.auth ?? {}) as { token?: string }
      if (token !== 'good') throw Object.assign(new Error('token expired'), { code: 'AUTH_EXPIRED' })
      socket.data.user = 'ann'
    })
    const users: unknown[] = []
    server.parley.on('connection', (socket) => users.push(socket.data.user))
    const url = await listen(server)

    const refused = open(url, { transports: [transport], auth: { token: 'old' } })
    const [error, willRetry] = await next<[ClientError, boolean]>(refused, 'connect_error')
    expect({ code: error.code, message: error.message, willRetry }).toEqual({
      code: 'AUTH_EXPIRED',
      message: 'token expired',
      willRetry: false,
    })
    expect(refused.active).toBe(false)

    const welcome = open(url, { transports: [transport], auth: { token: 'good' } })
    await next(welcome, 'connect')
    expect(users).toEqual(['ann'])
  })

  it('hides the message of an error without a code, and refuses a socket the middleware disconnected', async () => {
    const server = Fastify()
    await server.register(parley, { path: '/parley' })
    const heard: string[] = []
    let connections = 0
    server.parley.use((socket) => {
      const { who } = socket.handshake.auth as { who: string }
      if (who === 'plain') throw new Error('SELECT * FROM users failed on db-3')
      if (who === 'kicked') {
        socket.on('disconnect', (reason) => heard.push(reason))
        socket.disconnect()
      }
    })
    server.parley.on('connection', () => connections++)
    const url = await listen(server)

    const plain = open(url, { transports: [transport], auth: { who: 'plain' } })
    const [plainError, plainRetry] = await next<[ClientError, boolean]>(plain, 'connect_error')
    expect([plainError.code, plainError.message, plainRetry]).toEqual([
      'PARLEY_REFUSED',
      'refused by middleware',
      false,
    ])

    const kicked = open(url, { transports: [transport], auth: { who: 'kicked' } })
    const [kickedError, kickedRetry] = await next<[ClientError, boolean]>(kicked, 'connect_error')
    expect([kickedError.code, kickedError.message, kickedRetry]).toEqual([
      'PARLEY_REFUSED',
      'the server disconnected the socket',
      false,
    ])
    expect(heard).toEqual(['server disconnect'])
    expect(connections).toBe(0)
  })
})

describe.each(transports)('server README: replies over %s', (transport) => {
  it('answers a request by callback, error-first callback and promise, and a client without a listener with PARLEY_NO_HANDLER', async () => {
    const server = Fastify()
    await server.register(parley, { path: '/parley' })
    const done = new Promise<unknown[]>((resolve) => {
      server.parley.on('connection', async (socket) => {
        const results: unknown[] = []
        await new Promise<void>((callback) =>
          socket.emit('question', 'why?', (answer: string) => {
            results.push(answer)
            callback()
          }),
        )
        await new Promise<void>((callback) =>
          socket.timeout(5000).emit('question', 'why?', (err: Error | null, answer: string) => {
            results.push(err ?? answer)
            callback()
          }),
        )
        results.push(await socket.timeout(5000).emitWithAck('question', 'why?'))
        results.push(
          await socket.emitWithAck('nobody listens').catch((e: ParleyError) => [e.code, e.message]),
        )
        resolve(results)
      })
    })
    const url = await listen(server)
    const socket = open(url, { transports: [transport] })
    socket.on('question', (q: string, ack: (answer: string) => void) => ack(`because you asked ${q}`))
    const results = await within(done, 5000, 'the server to have its answers')
    expect(results).toEqual([
      'because you asked why?',
      'because you asked why?',
      'because you asked why?',
      ['PARLEY_NO_HANDLER', 'no handler for "nobody listens"'],
    ])
  })

  it("rejects the client's request with a handler's own code, hides other errors, and answers a missing handler at once", async () => {
    const server = Fastify()
    await server.register(parley, { path: '/parley' })
    const rooms = new Set(['lobby'])
    server.parley.on('connection', (socket) => {
      socket.on('enter', async (room: string, ack: (ok: true) => void) => {
        if (!rooms.has(room)) throw new ParleyError('NO_SUCH_ROOM', `no room "${room}"`)
        ack(true)
      })
      socket.on('crash', () => {
        throw new Error('a secret stack')
      })
    })
    const url = await listen(server)
    const socket = open(url, { transports: [transport], ackTimeout: 5000 })
    await next(socket, 'connect')
    const failure = (p: Promise<unknown>) =>
      p.then(
        (value) => ({ value }),
        (e: ClientError) => ({ code: e.code, message: e.message }),
      )
    expect(await socket.emitWithAck('enter', 'lobby')).toBe(true)
    expect(await failure(socket.emitWithAck('enter', 'attic'))).toEqual({
      code: 'NO_SUCH_ROOM',
      message: 'no room "attic"',
    })
    expect(await failure(socket.emitWithAck('crash'))).toEqual({
      code: 'PARLEY_HANDLER_ERROR',
      message: 'the handler failed',
    })
    expect(await failure(socket.emitWithAck('missing'))).toEqual({
      code: 'PARLEY_NO_HANDLER',
      message: 'no handler for "missing"',
    })
    // The client README's error-first form.
    const errorFirst = await new Promise<unknown[]>((resolve) =>
      socket
        .timeout(2000)
        .emit('enter', 'attic', (err: ClientError | null, reply?: unknown) => resolve([err?.code, reply])),
    )
    expect(errorFirst).toEqual(['NO_SUCH_ROOM', undefined])
  })
})

describe('server README: event middleware and schemas', () => {
  it('refuses events with the middleware code, as a rejection or an error event, and lets handlers see changed arguments', async () => {
    const server = Fastify()
    await server.register(parley, { path: '/parley' })
    const tooFast = new Set(['bob'])
    const handled: unknown[] = []
    server.parley.on('connection', (socket) => {
      socket.data.user = (socket.handshake.auth as { user: string }).user
      socket.use(([event], next) => {
        if (event.startsWith('admin:') && !socket.data.admin)
          next(new ParleyError('FORBIDDEN', 'admins only'))
        else next()
      })
      socket.use(async ([event]) => {
        if (event === 'chat' && tooFast.has(socket.data.user as string))
          throw new ParleyError('RATE_LIMITED', 'slow down')
      })
      socket.use((packet, next) => {
        if (packet[0] === 'shout') packet[1] = String(packet[1]).toUpperCase()
        next()
      })
      socket.use(([event]) => {
        if (event === 'broken') throw new Error('the database is away')
      })
      socket.on('admin:wipe', (ack?: (ok: boolean) => void) => ack?.(true))
      socket.on('chat', (_text: string, ack?: (ok: boolean) => void) => ack?.(true))
      socket.on('shout', (text: string, ack: (t: string) => void) => ack(text))
      socket.on('broken', (ack: (ok: boolean) => void) => {
        handled.push('broken')
        ack(true)
      })
    })
    const url = await listen(server)
    const failure = (p: Promise<unknown>) =>
      p.then(
        (value) => ({ value }),
        (e: ClientError) => ({ code: e.code, message: e.message }),
      )

    const ann = open(url, { auth: { user: 'ann' }, ackTimeout: 5000 })
    await next(ann, 'connect')
    expect(await failure(ann.emitWithAck('admin:wipe'))).toEqual({
      code: 'FORBIDDEN',
      message: 'admins only',
    })
    expect(await ann.emitWithAck('chat', 'hi')).toBe(true)
    expect(await ann.emitWithAck('shout', 'hey')).toBe('HEY')
    expect(await failure(ann.emitWithAck('broken'))).toEqual({
      code: 'PARLEY_HANDLER_ERROR',
      message: 'refused by middleware',
    })
    expect(handled).toEqual([])
    // Without a reply wanted, the refusal is an ERROR notice: the client's `error` event.
    const notice = next<[ClientError]>(ann, 'error')
    ann.emit('admin:wipe')
    expect((await notice)[0].code).toBe('FORBIDDEN')

    const bob = open(url, { auth: { user: 'bob' }, ackTimeout: 5000 })
    await next(bob, 'connect')
    expect(await failure(bob.emitWithAck('chat', 'hi'))).toEqual({
      code: 'RATE_LIMITED',
      message: 'slow down',
    })
  })

  it("refuses arguments that fail the event's schema, saying where", async () => {
    const server = Fastify()
    await server.register(parley, { path: '/parley' })
    server.parley.schemas({
      chat: {
        type: 'array',
        items: [
          {
            type: 'object',
            properties: { text: { type: 'string', minLength: 1, maxLength: 500 } },
            required: ['text'],
            additionalProperties: false,
          },
        ],
        minItems: 1,
        maxItems: 1,
      },
      move: { type: 'array', items: [{ type: 'integer' }, { type: 'integer' }], minItems: 2, maxItems: 2 },
    })
    const moves: unknown[] = []
    server.parley.on('connection', (socket) => {
      socket.on('chat', (_msg: { text: string }, ack?: (ok: boolean) => void) => ack?.(true))
      socket.on('move', (x: number, y: number) => moves.push([x, y]))
    })
    const url = await listen(server)
    const socket = open(url, { ackTimeout: 5000 })
    await next(socket, 'connect')
    expect(await socket.emitWithAck('chat', { text: 'hi' })).toBe(true)
    const refused = await socket
      .emitWithAck('chat', { text: 42 })
      .catch((e: ClientError) => [e.code, e.message])
    expect(refused).toEqual(['PARLEY_VALIDATION_FAILED', '"chat": args/0/text must be string'])
    const notice = next<[ClientError]>(socket, 'error')
    socket.emit('move', 1.5, 2)
    expect((await notice)[0].code).toBe('PARLEY_VALIDATION_FAILED')
    socket.emit('move', 1, 2)
    await within(
      new Promise<void>((resolve) => {
        const check = () => (moves.length > 0 ? resolve() : setTimeout(check, 5))
        check()
      }),
      5000,
      'the valid move',
    )
    expect(moves).toEqual([[1, 2]])
    // The usual slip: the first argument's schema given alone.
    expect(() =>
      server.parley.schemas({ chat: { type: 'object', properties: { text: { type: 'string' } } } }),
    ).toThrow(TypeError)
  })
})

describe('JSON both ways (delivery guarantees)', () => {
  it('delivers what JSON.stringify makes of a value, and undefined arguments and replies as documented', async () => {
    const server = Fastify()
    await server.register(parley, { path: '/parley' })
    const received: unknown[] = []
    server.parley.on('connection', (socket) => {
      socket.on('values', (...args: unknown[]) => received.push(args))
      socket.on('reply undefined', (ack: (v?: unknown) => void) => ack(undefined))
      socket.on('reply nothing', (ack: () => void) => ack())
    })
    const url = await listen(server)
    const socket = open(url, { ackTimeout: 5000 })
    await next(socket, 'connect')
    const when = new Date(Date.UTC(2024, 0, 2, 3, 4, 5))
    socket.emit(
      'values',
      {
        when,
        map: new Map([[1, 2]]),
        set: new Set([1]),
        error: new Error('x'),
        nan: Number.NaN,
        gone: undefined,
        f: () => 1,
      },
      [undefined, Number.POSITIVE_INFINITY],
      undefined,
    )
    expect(await socket.emitWithAck('reply undefined')).toBe(null)
    expect(await socket.emitWithAck('reply nothing')).toBe(undefined)
    expect(received).toEqual([
      [{ when: '2024-01-02T03:04:05.000Z', map: {}, set: {}, error: {}, nan: null }, [null, null], null],
    ])
  })
})

describe('server README: rooms and broadcasting', () => {
  it('reaches the rooms the snippet names, gathers replies, and runs the socket operations', async () => {
    const server = Fastify()
    await server.register(parley, { path: '/parley' })
    const leaving: string[][] = []
    server.parley.on('connection', (socket) => {
      const { rooms } = socket.handshake.auth as { rooms: string[] }
      socket.join('lobby')
      socket.join(rooms)
      socket.on('chat', (msg: unknown) => socket.to('lobby').emit('chat', msg))
      socket.on('disconnecting', () => leaving.push([...socket.rooms].filter((room) => room !== socket.id)))
      socket.broadcast.emit('joined', socket.id)
    })
    const url = await listen(server)

    const got = new Map<string, unknown[]>()
    const join = async (name: string, rooms: string[]) => {
      const socket = open(url, { auth: { rooms }, ackTimeout: 5000 })
      got.set(name, [])
      for (const event of ['chat', 'news', 'joined', 'cursor']) {
        socket.on(event, (...args: unknown[]) => got.get(name)?.push([event, ...args]))
      }
      socket.on('vote?', (ack: (v: string) => void) => ack(`${name} votes yes`))
      await next(socket, 'connect')
      return socket
    }
    const ann = await join('ann', ['voters'])
    const bob = await join('bob', ['muted', 'voters'])
    const cat = await join('cat', ['spam'])

    const chatAtBob = next(bob, 'chat')
    ann.emit('chat', { text: 'hello lobby' })
    await chatAtBob
    server.parley.emit('news', { text: 'to everyone' })
    server.parley.to('lobby').except('muted').emit('news', { text: 'hi' })
    server.parley.to([]).emit('news', { text: 'nobody' })
    const votes = await server.parley.timeout(2000).to('voters').emitWithAck('vote?')
    expect([...votes].sort()).toEqual(['ann votes yes', 'bob votes yes'])
    // Everything above was sent before the votes' replies came back: it has arrived too.
    await within(
      new Promise<void>((resolve) => {
        const check = () => (got.get('cat')?.length === 3 ? resolve() : setTimeout(check, 5))
        check()
      }),
      5000,
      'the broadcasts at cat',
    )
    expect(got.get('ann')).toEqual([
      ['joined', bob.id],
      ['joined', cat.id],
      ['news', { text: 'to everyone' }],
      ['news', { text: 'hi' }],
    ])
    expect(got.get('bob')).toEqual([
      ['joined', cat.id],
      ['chat', { text: 'hello lobby' }],
      ['news', { text: 'to everyone' }],
    ])
    expect(got.get('cat')).toEqual([
      ['chat', { text: 'hello lobby' }],
      ['news', { text: 'to everyone' }],
      ['news', { text: 'hi' }],
    ])

    const inLobby = await server.parley.in('lobby').fetchSockets()
    expect(inLobby.map((s) => s.id).sort()).toEqual([ann.id, bob.id, cat.id].sort())
    const described = inLobby.find((s) => s.id === bob.id)
    expect(described && Object.keys(described).sort()).toEqual(['data', 'handshake', 'id', 'rooms'])
    expect(described && [...described.rooms].sort()).toEqual([bob.id, 'lobby', 'muted', 'voters'].sort())

    await server.parley.in('lobby').socketsJoin('announcements')
    expect((await server.parley.in('announcements').fetchSockets()).length).toBe(3)

    const gone = next<[string]>(cat, 'disconnect')
    await server.parley.in('spam').disconnectSockets()
    expect((await gone)[0]).toBe('server disconnect')
    expect(leaving).toEqual([['lobby', 'spam', 'announcements']])
  })

  it('rejects a broadcast with acks that some socket did not answer, with the replies that came', async () => {
    const server = Fastify()
    await server.register(parley, { path: '/parley' })
    server.parley.on('connection', (socket) => socket.join('voters'))
    const url = await listen(server)
    const yes = open(url)
    yes.on('vote?', (ack: (v: string) => void) => ack('yes'))
    const silent = open(url)
    silent.on('vote?', () => {})
    await Promise.all([next(yes, 'connect'), next(silent, 'connect')])
    const error = await server.parley
      .timeout(300)
      .to('voters')
      .emitWithAck('vote?')
      .then(
        () => undefined,
        (e: ParleyError) => e,
      )
    expect(error?.code).toBe('PARLEY_ACK_TIMEOUT')
    expect(error?.details).toMatchObject({ replies: ['yes'] })
  })
})

describe('client README and docs/errors.md: what emit throws, as documented', () => {
  it('throws PARLEY_PAYLOAD_TOO_LARGE, PARLEY_TOO_MANY_PENDING_ACKS and PARLEY_QUEUE_FULL with the documented details, on both sides', async () => {
    const server = Fastify()
    await server.register(parley, { path: '/parley', maxPendingAcks: 1 })
    const sockets: ServerSocket[] = []
    server.parley.on('connection', (socket) => {
      sockets.push(socket)
      socket.on('slow', () => {})
    })
    const url = await listen(server)
    const socket = open(url, { maxPendingAcks: 1, maxQueuedMessages: 2 })
    socket.on('slow', () => {})
    await next(socket, 'connect')
    const thrown = (f: () => unknown) => {
      try {
        f()
      } catch (e) {
        const { code, message, details } = e as ClientError
        return { code, message, details }
      }
      return 'nothing thrown'
    }
    const big = 'x'.repeat(1_000_000)
    expect(thrown(() => socket.emit('big', big))).toEqual({
      code: 'PARLEY_PAYLOAD_TOO_LARGE',
      message: 'event "big": 1000018 bytes > maxPayload 1000000',
      details: { size: 1_000_018, limit: 1_000_000 },
    })
    const [serverSocket] = sockets
    expect(thrown(() => serverSocket?.emit('big', big))).toEqual({
      code: 'PARLEY_PAYLOAD_TOO_LARGE',
      message: 'event "big": the packet is 1000018 bytes, past maxPayload (1000000 bytes)',
      details: { size: 1_000_018, limit: 1_000_000 },
    })

    // One reply awaited already: the next request is refused at once.
    void socket.emitWithAck('slow').catch(() => {})
    expect(await socket.emitWithAck('slow').catch((e: ClientError) => [e.code, e.details])).toEqual([
      'PARLEY_TOO_MANY_PENDING_ACKS',
      { limit: 1 },
    ])
    void serverSocket?.emitWithAck('slow').catch(() => {})
    expect(await serverSocket?.emitWithAck('slow').catch((e: ParleyError) => [e.code, e.details])).toEqual([
      'PARLEY_TOO_MANY_PENDING_ACKS',
      { limit: 1 },
    ])

    // Disconnected, emits are kept for the next connect(), up to maxQueuedMessages.
    socket.disconnect()
    socket.emit('kept', 1)
    socket.emit('kept', 2)
    expect(thrown(() => socket.emit('kept', 3))).toMatchObject({
      code: 'PARLEY_QUEUE_FULL',
      details: { maxQueuedMessages: 2, queued: 2 },
    })
  })
})

describe('client README: the session ends, as documented', () => {
  it('hears a server disconnect with its message, stays stopped, and keeps emits made after disconnect() for the next connect()', async () => {
    const server = Fastify()
    await server.register(parley, { path: '/parley' })
    const kept: unknown[] = []
    const sockets: ServerSocket[] = []
    server.parley.on('connection', (socket) => {
      sockets.push(socket)
      socket.on('kept', (n: unknown) => kept.push(n))
    })
    const url = await listen(server)
    const socket = open(url)
    await next(socket, 'connect')
    const firstId = socket.id
    socket.disconnect()
    expect(socket.id).toBe(undefined)
    socket.emit('kept', 'sent while disconnected')
    socket.connect()
    await next(socket, 'connect')
    expect(socket.id).not.toBe(firstId)
    await within(
      new Promise<void>((resolve) => {
        const check = () => (kept.length > 0 ? resolve() : setTimeout(check, 5))
        check()
      }),
      5000,
      'the kept emit',
    )
    expect(kept).toEqual(['sent while disconnected'])

    const ended = next<[string, { message?: string }?]>(socket, 'disconnect')
    sockets.at(-1)?.disconnect()
    expect(await ended).toEqual(['server disconnect', { message: 'the server disconnected the socket' }])
    // 'the client does not reconnect by itself'
    expect(socket.active).toBe(false)
  })

  it("runs the reconnection: false example: the listener's connect() brings the session back", async () => {
    const server = Fastify()
    await server.register(parley, { path: '/parley' })
    const url = await listen(server)
    const socket = open(url, { reconnection: false })
    socket.on('disconnect', (reason) => {
      if (reason !== 'client disconnect') setTimeout(() => socket.connect(), 100)
    })
    await next(socket, 'connect')
    const again = next(socket, 'connect', 'the connect() of the disconnect listener')
    for (const serverSocket of server.parley.sockets.values()) serverSocket.disconnect()
    await again
    expect(socket.recovered).toBe(false)
  })

  it('comes back after a shutdown no sooner than retryAfter, in a new session', async () => {
    const first = Fastify()
    await first.register(parley, { path: '/parley', shutdown: { retryAfter: 500, retrySpread: 0 } })
    const url = await listen(first)
    const socket = open(url, { reconnectionDelay: 20, reconnectionDelayMax: 50 })
    await next(socket, 'connect')
    const port = Number(new URL(url).port)
    const ended = next<[string]>(socket, 'disconnect')
    const tries: number[] = []
    socket.on('reconnect_attempt', () => tries.push(performance.now()))
    // The CLOSE goes out after this: its retryAfter counts from later still.
    const closedAt = performance.now()
    const closing = first.close()
    expect((await ended)[0]).toBe('server shutdown')
    await closing
    const second = Fastify()
    await second.register(parley, { path: '/parley' })
    app = second
    await second.listen({ port, host: '127.0.0.1' })
    await next(socket, 'connect', 'the connect on the restarted server')
    expect(tries[0]! - closedAt).toBeGreaterThanOrEqual(500)
    expect(socket.recovered).toBe(false)
  })
})
