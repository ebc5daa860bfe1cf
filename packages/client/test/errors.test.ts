// Errors a user can act on: what the client says when the URL is wrong, the server is down or
// an option does not exist, over each transport, against the real server.
import net from 'node:net'
import { ErrorCode, type ParleyError } from '@parley/protocol'
import { MemoryAdapter } from '@parley/server'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { startFaultProxy } from '../../../test/support/fault-proxy.js'
import { revoked, trapsThrow, UNSHOWABLE } from '../../../test/support/odd-values.js'
import { unheard } from '../../../test/support/unheard.js'
import { connect } from '../src/index.js'
import { client, closeAll, next, parleyOf, startServer, type TestServer, until } from './helpers.js'

let server: TestServer | undefined

afterEach(closeAll)

/** A loopback port nothing listens on. */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo
      probe.close(() => resolve(port))
    })
  })
}

describe('a 404 to the WebSocket in Node', () => {
  it('goes on to SSE at a server without WebSocket, whose upgrade answers 404 PARLEY_TRANSPORT_DISABLED', async () => {
    server = await startServer(() => {}, { transports: ['sse', 'polling'] })
    const socket = client(server.url)
    const tried: [string, string][] = []
    socket.on('transport_error', (name: string, error: ParleyError<string>) => tried.push([name, error.code]))
    await next(socket, 'connect')
    expect(socket.transport).toBe('sse')
    expect(tried).toEqual([['websocket', ErrorCode.TRANSPORT_DISABLED]])
  })

  it("goes on to SSE where a proxy sends the WebSocket's path nowhere (a 404 that is not Parley's)", async () => {
    server = await startServer((app) => {
      app.addHook('onRequest', async (request, reply) => {
        if (request.url.startsWith('/parley/ws'))
          return reply.code(404).type('text/html').send('<h1>404</h1>')
      })
    })
    const socket = client(server.url)
    const tried: [string, string][] = []
    socket.on('transport_error', (name: string, error: ParleyError<string>) => tried.push([name, error.code]))
    await next(socket, 'connect')
    expect(socket.transport).toBe('sse')
    expect(tried).toEqual([['websocket', ErrorCode.NOT_FOUND]])
  })

  it('still stops at a wrong path, once every transport found nothing there', async () => {
    server = await startServer()
    const socket = client(`${server.url}/wrong`)
    const tried: string[] = []
    socket.on('transport_error', (name: string) => tried.push(name))
    const [error, willRetry] = await next<[ParleyError<string>, boolean]>(socket, 'connect_error')
    expect(error.code).toBe(ErrorCode.NOT_FOUND)
    expect(willRetry).toBe(false)
    expect(tried).toEqual(['websocket', 'sse', 'polling'])
  })
})

describe('a handshake that fails inside the server', () => {
  it.each(['websocket', 'sse', 'polling'] as const)(
    'over %s is tried again, on the same transport once more and then after the backoff, until it works',
    async (transport) => {
      // The adapter cannot put a socket into its own room while its store is away.
      const joins = { fail: true }
      server = await startServer(() => {}, {
        adapter: (sockets: ConstructorParameters<typeof MemoryAdapter>[0]) => {
          const adapter = new MemoryAdapter(sockets)
          const addAll = adapter.addAll.bind(adapter)
          return Object.assign(adapter, {
            addAll: (id: string, rooms: Iterable<string>) =>
              joins.fail ? Promise.reject(new Error('the store is away')) : addAll(id, rooms),
          })
        },
      })
      const socket = client(server.url, { transports: [transport], reconnectionDelay: 50 })
      const tried: string[] = []
      socket.on('transport_error', (name: string, error: ParleyError<string>) =>
        tried.push(`${name} ${error.code}`),
      )
      const [error, willRetry] = await next<[ParleyError<string>, boolean]>(socket, 'connect_error')
      expect(error.code).toBe(ErrorCode.SERVER_SHUTTING_DOWN)
      expect(error.message).toBe('the handshake failed inside the server: try again')
      expect(willRetry).toBe(true)
      // Not the client's fault: the same transport once more (a balancer may pick another node).
      const failed = `${transport} ${ErrorCode.SERVER_SHUTTING_DOWN}`
      expect(tried).toEqual([failed, failed])

      joins.fail = false
      await next(socket, 'connect')
      expect(socket.transport).toBe(transport)
    },
  )
})

describe.each(['websocket', 'sse', 'polling'] as const)('over %s', (transport) => {
  it('stops at a wrong path, and says which URL it tried', async () => {
    server = await startServer()
    const socket = client(`${server.url}/wrong`, { transports: [transport] })
    const [error, willRetry] = await next<[ParleyError<string>, boolean]>(socket, 'connect_error')
    expect(error.code).toBe(ErrorCode.NOT_FOUND)
    expect(error.message).toContain(
      `${server.url.replace(/^http/, transport === 'websocket' ? 'ws' : 'http')}/wrong/`,
    )
    expect(willRetry).toBe(false)
    await until(() => !socket.active, 2000, 'the client to stop')
  })

  it('says why it cannot reach a server that is down, with the URL', async () => {
    const port = await closedPort()
    const socket = client(`http://127.0.0.1:${port}/parley`, { transports: [transport], reconnection: false })
    const [error] = await next<[ParleyError<string>]>(socket, 'connect_error')
    expect(error.code).toBe(ErrorCode.TRANSPORT_ERROR)
    expect(error.message).toContain('ECONNREFUSED')
    expect(error.message).toContain(`127.0.0.1:${port}/parley/`)
  })

  it('names the URL, without its query, when no OPEN comes in time', async () => {
    // The middleware holds the handshake past the client's bound, then lets it go.
    let release = () => {}
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    server = await startServer((app) => parleyOf(app).use(() => held))
    try {
      const socket = client(`${server.url}/parley?token=secret`, {
        transports: [transport],
        connectTimeout: 500,
        reconnection: false,
      })
      const [error] = await next<[ParleyError<string>]>(socket, 'connect_error')
      const endpoint = transport === 'websocket' ? 'ws' : transport === 'sse' ? 'sse' : 'poll'
      const origin = transport === 'websocket' ? server.url.replace(/^http/, 'ws') : server.url
      expect([error.code, error.message]).toEqual([
        ErrorCode.HANDSHAKE_TIMEOUT,
        `no OPEN from ${origin}/parley/${endpoint} within 500 ms`,
      ])
    } finally {
      release()
    }
  })

  it.each([
    ['a BigInt', { n: 1n }, ErrorCode.UNSERIALIZABLE],
    [
      'a cycle',
      (() => {
        const self: Record<string, unknown> = {}
        self.self = self
        return self
      })(),
      ErrorCode.UNSERIALIZABLE,
    ],
    ['a forbidden key', JSON.parse('{"__proto__":1}'), ErrorCode.FORBIDDEN_KEY],
    // Read by the encoder, they throw: neither the trap's error nor the engine's escapes.
    ['a Proxy whose every trap throws', trapsThrow(), ErrorCode.UNSERIALIZABLE],
    ['a revoked Proxy', revoked(), ErrorCode.UNSERIALIZABLE],
  ])('refuses auth holding %s: connect_error, no retry, nothing thrown', async (_, auth, code) => {
    server = await startServer()
    const thrown: unknown[] = []
    const hear = (error: unknown) => void thrown.push(error)
    process.on('uncaughtException', hear)
    try {
      const socket = client(server.url, { transports: [transport], auth: auth as never })
      const [error, willRetry] = await next<[ParleyError<string>, boolean]>(socket, 'connect_error')
      expect(error.code).toBe(code)
      expect(error.message).toMatch(/^auth: /)
      expect(willRetry).toBe(false)
      await until(() => !socket.active, 2000, 'the client to stop')
      await new Promise((resolve) => setTimeout(resolve, 100))
    } finally {
      process.off('uncaughtException', hear)
    }
    expect(thrown).toEqual([])
  })

  it('refuses the client when its auth function throws or rejects: PARLEY_REFUSED, no retry, until connect()', async () => {
    const auths: unknown[] = []
    server = await startServer((app) => {
      parleyOf(app).use(async (socket) => void auths.push(socket.handshake.auth))
    })
    const failure = new Error('token service away')
    let calls = 0
    const socket = client(server.url, {
      transports: [transport],
      // Sync throw, then async rejection, then a token.
      auth: () => {
        calls++
        if (calls === 1) throw failure
        return calls === 2 ? Promise.reject(failure) : Promise.resolve({ token: 't' })
      },
    })
    const errors: [ParleyError<string>, boolean][] = []
    socket.on('connect_error', (error: ParleyError<string>, willRetry: boolean) =>
      errors.push([error, willRetry]),
    )
    const refused = [ErrorCode.REFUSED, 'auth: token service away', failure, false]
    const seen = () => errors.map(([error, willRetry]) => [error.code, error.message, error.cause, willRetry])
    await until(() => errors.length === 1 && !socket.active, 3000, 'the first refusal')
    expect(seen()).toEqual([refused])
    socket.connect()
    await until(() => errors.length === 2 && !socket.active, 3000, 'the second refusal')
    expect(seen()).toEqual([refused, refused])
    // Nothing reached the server, and nothing was tried again by itself.
    expect(calls).toBe(2)
    expect(auths).toEqual([])
    socket.connect()
    await next(socket, 'connect', 5000)
    expect(auths).toEqual([{ token: 't' }])
  })

  it('refuses the client when its auth function throws a symbol, saying which', async () => {
    server = await startServer()
    const socket = client(server.url, {
      transports: [transport],
      auth: () => {
        throw Symbol('no token')
      },
    })
    const [error, willRetry] = await next<[ParleyError<string>, boolean]>(socket, 'connect_error')
    expect([error.code, error.message, willRetry]).toEqual([
      ErrorCode.REFUSED,
      'auth: Symbol(no token)',
      false,
    ])
    await until(() => !socket.active, 2000, 'the client to stop')
  })

  it.each([
    // 1023 units, then an emoji across the 1024th: the cut would keep its first half alone.
    ['an emoji across the cut, left out whole', `${'x'.repeat(1023)}😀 and more`, 'x'.repeat(1023)],
    ['an emoji that ends at the cut, kept', `${'x'.repeat(1022)}😀 and more`, `${'x'.repeat(1022)}😀`],
  ])(
    'names what its auth function threw in at most 1024 units, never half an emoji: %s',
    async (_, thrown, shown) => {
      server = await startServer()
      const socket = client(server.url, {
        transports: [transport],
        auth: () => {
          throw new Error(thrown)
        },
      })
      const [error] = await next<[ParleyError<string>]>(socket, 'connect_error')
      expect([error.code, error.message]).toEqual([ErrorCode.REFUSED, `auth: ${shown}`])
      // No surrogate outside a pair.
      expect(error.message).not.toMatch(/\p{Cs}/u)
      await until(() => !socket.active, 2000, 'the client to stop')
    },
  )

  it.each(UNSHOWABLE)(
    'refuses the client when its auth function throws or rejects with %s, which no message can show',
    async (_, make) => {
      server = await startServer()
      let calls = 0
      const errors: unknown[] = []
      const thrown = await unheard(async () => {
        const socket = client(server!.url, {
          transports: [transport],
          // A sync throw, then (after connect()) a rejection.
          auth: () => {
            if (++calls === 1) throw make()
            return Promise.reject(make())
          },
        })
        socket.on('connect_error', (error: ParleyError<string>, willRetry: boolean) =>
          errors.push([error.code, error.message, willRetry]),
        )
        await until(() => errors.length === 1 && !socket.active, 3000, 'the first refusal')
        socket.connect()
        await until(() => errors.length === 2 && !socket.active, 3000, 'the second refusal')
      })
      // Not the engine's "Cannot convert object to primitive value" as a transport's failure,
      // tried again and again: the application's own refusal, as for any error it throws.
      const refused = [ErrorCode.REFUSED, 'auth: [object]', false]
      expect(errors).toEqual([refused, refused])
      expect(calls).toBe(2)
      expect(thrown).toEqual([])
    },
  )

  it.each([
    ['a Proxy whose every trap throws', trapsThrow],
    ['a revoked Proxy', revoked],
  ])(
    'refuses auth whose function returns %s as auth holding it: PARLEY_UNSERIALIZABLE, no retry',
    async (_, make) => {
      server = await startServer()
      const errors: unknown[] = []
      const thrown = await unheard(async () => {
        const socket = client(server!.url, { transports: [transport], auth: (() => make()) as never })
        socket.on('connect_error', (error: ParleyError<string>, willRetry: boolean) =>
          errors.push([error.code, error.message, willRetry]),
        )
        await until(() => errors.length === 1 && !socket.active, 3000, 'the refusal')
      })
      // Not the engine's TypeError (or the trap's error) from awaiting it, as the function's failure.
      expect(errors).toEqual([[ErrorCode.UNSERIALIZABLE, 'auth: not JSON', false]])
      expect(thrown).toEqual([])
    },
  )

  it('sends auth that is an object without prototype as any object', async () => {
    const auths: unknown[] = []
    server = await startServer((app) => {
      parleyOf(app).use(async (socket) => void auths.push(socket.handshake.auth))
    })
    const token = Object.assign(Object.create(null) as object, { token: 't' })
    const socket = client(server.url, { transports: [transport], auth: async () => token })
    await next(socket, 'connect')
    expect(auths).toEqual([{ token: 't' }])
  })

  it('ends a resume whose auth function throws: disconnect, then PARLEY_REFUSED with no retry', async () => {
    server = await startServer()
    const proxy = await startFaultProxy(server.port)
    let fail = false
    const socket = client(proxy.url, {
      transports: [transport],
      auth: () => {
        if (fail) throw 'no token' // not even an Error: its message is the value
        return { token: 't' }
      },
    })
    try {
      await next(socket, 'connect')
      const events: unknown[] = []
      socket.on('disconnect', (reason: string) => events.push(['disconnect', reason]))
      socket.on('connect_error', (error: ParleyError<string>, willRetry: boolean) =>
        events.push(['connect_error', error.code, error.message, willRetry]),
      )
      fail = true
      // Offline: a polling client's next request fails too (a cut alone, it sends another).
      proxy.offline = true
      proxy.cut('all')
      await until(() => events.length >= 2 && !socket.active, 8000, 'the resume to end')
      // (A loss soon after the connect says so first: connect_error for the transport, true.)
      expect(events.slice(-2)).toEqual([
        ['disconnect', 'transport close'],
        ['connect_error', ErrorCode.REFUSED, 'auth: no token', false],
      ])
    } finally {
      socket.disconnect()
      await proxy.close()
    }
  })

  it("hands the URL's own query parameters to the server, on every request", async () => {
    const queries: unknown[] = []
    server = await startServer((app) => {
      parleyOf(app).on('connection', (socket) => {
        queries.push((socket as unknown as { handshake: { query: unknown } }).handshake.query)
      })
    })
    const socket = client(`${server.url}/parley?room=lobby&lang=fr`, { transports: [transport] })
    await next(socket, 'connect')
    await until(() => queries.length === 1)
    expect(queries[0]).toMatchObject({ room: 'lobby', lang: 'fr', v: '1' })
  })
})

describe('listeners', () => {
  it('refuses one that is not a function when it is added (on, once, off), and the event still reaches the others', async () => {
    let peer: { emit(event: string, ...args: unknown[]): void } | undefined
    server = await startServer((app) => {
      parleyOf(app).on('connection', (socket) => {
        peer = socket
      })
    })
    const socket = client(server.url, { transports: ['websocket'] })
    const thrown: unknown[] = []
    const hear = (error: unknown) => void thrown.push(error)
    process.on('uncaughtException', hear)
    try {
      for (const bad of [42, 'handler', null, {}]) {
        for (const add of [
          () => socket.on('news', bad as never),
          () => socket.once('news', bad as never),
          () => socket.off('news', bad as never),
        ]) {
          expect(add).toThrow(
            expect.objectContaining({
              name: 'TypeError',
              code: 'PARLEY_INVALID_ARGUMENT',
              message: 'listener of news is not a function',
            }),
          )
        }
      }
      expect(socket.listenerCount('news')).toBe(0)
      // A symbol names no event of the wire, but the check that refuses its listener still
      // names it (a symbol in a template would throw the engine's own TypeError instead).
      expect(() => socket.on(Symbol('news') as never, 42 as never)).toThrow(
        expect.objectContaining({
          name: 'TypeError',
          code: 'PARLEY_INVALID_ARGUMENT',
          message: 'listener of Symbol(news) is not a function',
        }),
      )
      // Nor does a value that no template can show, the engine's TypeError in its place.
      for (const [, make] of UNSHOWABLE) {
        for (const add of [
          () => socket.on(make() as never, 42 as never),
          () => socket.off(make() as never, 42 as never),
        ]) {
          expect(add).toThrow(
            expect.objectContaining({
              name: 'TypeError',
              code: 'PARLEY_INVALID_ARGUMENT',
              message: 'listener of [object] is not a function',
            }),
          )
        }
      }
      const got: unknown[] = []
      socket.on('news', (value: unknown) => got.push(value))
      // off with an event alone, or nothing, takes no listener to check.
      socket.off('other').off('other', undefined)
      await next(socket, 'connect')
      await until(() => peer !== undefined)
      peer!.emit('news', 'hello')
      await until(() => got.length === 1, 3000, 'the event')
      await new Promise((resolve) => setTimeout(resolve, 50))
    } finally {
      process.off('uncaughtException', hear)
    }
    expect(thrown).toEqual([])
  })
})

describe("what the application's WebSocket or fetch throws", () => {
  it.each(UNSHOWABLE)(
    'fails the transport with PARLEY_TRANSPORT_ERROR when it is %s, and nothing is left unhandled',
    async (_, make) => {
      server = await startServer()
      const errors: unknown[] = []
      const thrown = await unheard(async () => {
        const socket = client(server!.url, {
          reconnection: false,
          transports: ['websocket', 'sse'],
          // Called with `new`: a function, not an arrow.
          WebSocket: function WebSocket() {
            throw make()
          } as never,
          fetch: () => Promise.reject(make()),
        })
        socket.on('transport_error', (name: string, error: ParleyError<string>) =>
          errors.push([name, error.code, error.message]),
        )
        await next(socket, 'connect_error')
      })
      // The client's own messages: never a trap's text, nor the engine's.
      expect(errors).toEqual([
        ['websocket', ErrorCode.TRANSPORT_ERROR, 'WebSocket failed'],
        ['sse', ErrorCode.TRANSPORT_ERROR, `POST ${server!.url}/parley/sse failed`],
      ])
      expect(thrown).toEqual([])
    },
  )
})

/**
 * An application's WebSocket: the `ws` package's, behind a class of its own whose `protocol`, and
 * its close event's `reason`, are what `odd` makes them, when it makes them.
 */
function oddWebSocket(odd: { protocol?: () => unknown; reason?: () => unknown }) {
  return class OddWebSocket {
    readonly #ws: WebSocket
    onopen: (() => void) | null = null
    onmessage: ((ev: unknown) => void) | null = null
    onclose: ((ev: unknown) => void) | null = null
    onerror: ((ev: unknown) => void) | null = null
    binaryType = 'arraybuffer'

    constructor(url: string, protocols: string) {
      const ws = new WebSocket(url, protocols)
      this.#ws = ws
      ws.binaryType = 'arraybuffer'
      ws.onopen = () => this.onopen?.()
      ws.onmessage = (ev) => this.onmessage?.(ev)
      ws.onerror = (ev) => this.onerror?.(ev)
      ws.onclose = ({ code, reason }) =>
        this.onclose?.({
          code,
          get reason() {
            return odd.reason ? odd.reason() : reason
          },
        })
    }

    get protocol(): unknown {
      return odd.protocol ? odd.protocol() : this.#ws.protocol
    }

    send(data: string | Uint8Array): void {
      this.#ws.send(data)
    }

    close(code?: number): void {
      this.#ws.close(code)
    }
  }
}

/** Odd values an application's WebSocket may give for a string, each with how a message shows it. */
const ODD_STRINGS: readonly (readonly [name: string, make: () => unknown, shown: string])[] = [
  ['a Proxy whose every trap throws', trapsThrow, '[object]'],
  ['a revoked Proxy', revoked, '[object]'],
  ['an object whose toString throws', () => UNSHOWABLE[3]![1](), '[object]'],
  ['a string of a million characters', () => 'x'.repeat(1_000_000), 'x'.repeat(1024)],
  // Cut at 1024 units, the emoji across the cut is left out whole, never its first half alone.
  ['a string with an emoji across the cut', () => `${'x'.repeat(1023)}😀`, 'x'.repeat(1023)],
]

describe("odd values of the application's WebSocket", () => {
  it.each([
    ...ODD_STRINGS.map(
      ([name, make, shown]) =>
        [name, ErrorCode.UNSUPPORTED_VERSION, `server chose subprotocol "${shown}"`, make] as const,
    ),
    [
      'a getter that throws',
      ErrorCode.TRANSPORT_ERROR,
      'WebSocket failed: no protocol here',
      () => {
        throw new Error('no protocol here')
      },
    ] as const,
  ])(
    'a protocol that is %s: %s, named as no more than 1024 characters, then SSE, and nothing escapes',
    async (_, code, message, make) => {
      server = await startServer()
      const errors: unknown[] = []
      const thrown = await unheard(async () => {
        const socket = client(server!.url, {
          transports: ['websocket', 'sse'],
          reconnection: false,
          WebSocket: oddWebSocket({ protocol: make }) as never,
        })
        socket.on('transport_error', (name: string, error: ParleyError<string>) =>
          errors.push([name, error.code, error.message]),
        )
        await next(socket, 'connect')
        expect(socket.transport).toBe('sse')
      })
      expect(errors).toEqual([['websocket', code, message]])
      expect(thrown).toEqual([])
    },
  )

  it.each([
    ...ODD_STRINGS,
    [
      'a getter that throws',
      () => {
        throw new Error('no reason here')
      },
      '',
    ] as const,
  ])(
    "a close event's reason that is %s: PARLEY_TRANSPORT_ERROR, the reason named as no more than 1024 characters",
    async (_, make, shown) => {
      const port = await closedPort()
      const errors: unknown[] = []
      const thrown = await unheard(async () => {
        const socket = client(`http://127.0.0.1:${port}`, {
          transports: ['websocket'],
          reconnection: false,
          WebSocket: oddWebSocket({ reason: make }) as never,
        })
        socket.on('transport_error', (name: string, error: ParleyError<string>) =>
          errors.push([name, error.code, error.message]),
        )
        await next(socket, 'connect_error')
      })
      expect(errors).toEqual([
        [
          'websocket',
          ErrorCode.TRANSPORT_ERROR,
          `WebSocket ws://127.0.0.1:${port}/parley/ws closed (1006${shown && ` ${shown}`}): ECONNREFUSED`,
        ],
      ])
      expect(thrown).toEqual([])
    },
  )
})

describe.each(['sse', 'polling'] as const)('fetch failures over %s', (transport) => {
  it('say what fetch said under its "fetch failed"', async () => {
    // A port fetch refuses to use (the Fetch standard's bad ports): nothing is sent, and its error
    // says so only in its cause.
    const socket = client('http://127.0.0.1:6000/parley', { transports: [transport], reconnection: false })
    const [error] = await next<[ParleyError<string>]>(socket, 'connect_error')
    expect(error.code).toBe(ErrorCode.TRANSPORT_ERROR)
    expect(error.message).toMatch(/failed: bad port$/)
  })
})

describe('options', () => {
  it.each(['query', 'queries', 'Query'])(
    'refuses an option it does not know, and says where query parameters go: %s',
    (key) => {
      expect(() => connect('http://127.0.0.1:1', { [key]: { a: 1 }, autoConnect: false } as never)).toThrow(
        `unknown option ${key} (query parameters go in the URL)`,
      )
    },
  )

  it.each(['timeout', 'reconnectDelay', 'headers'])(
    'refuses an unknown option %s plainly, with no word of query parameters',
    (key) => {
      const refusal = expect.objectContaining({
        code: 'PARLEY_INVALID_ARGUMENT',
        message: `unknown option ${key}`,
      })
      expect(() => connect('http://127.0.0.1:1', { [key]: 1, autoConnect: false } as never)).toThrow(refusal)
    },
  )

  it.each(UNSHOWABLE)(
    'refuses %s for a URL or for an option, with its own coded TypeError naming it',
    (_, make) => {
      const refused = (message: string) =>
        expect.objectContaining({ name: 'TypeError', code: 'PARLEY_INVALID_ARGUMENT', message })
      expect(() => connect(make() as never, { autoConnect: false })).toThrow(
        refused('bad server URL: [object]'),
      )
      for (const [key, takes] of [
        ['transports', 'a list of websocket,sse,polling'],
        ['path', 'a path like /parley'],
        ['storage', 'like localStorage'],
        ['fetch', 'a function'],
      ]) {
        expect(() => connect('http://127.0.0.1:1', { autoConnect: false, [key!]: make() })).toThrow(
          refused(`option ${key} must be ${takes}`),
        )
      }
      // One that throws when read says what it takes all the same.
      const getter = {
        autoConnect: false,
        get ackTimeout(): number {
          throw make()
        },
      }
      expect(() => connect('http://127.0.0.1:1', getter)).toThrow(
        refused('option ackTimeout must be a number >= 1'),
      )
    },
  )

  it('refuses options that throw when their keys are read, saying so', () => {
    for (const options of [trapsThrow(), revoked()]) {
      expect(() => connect('http://127.0.0.1:1', options as never)).toThrow(
        expect.objectContaining({ code: 'PARLEY_INVALID_ARGUMENT', message: 'options are not valid' }),
      )
    }
  })

  it('refuses a URL that sets the protocol’s own query parameters', () => {
    expect(() => connect('http://127.0.0.1:1/parley?sid=x', { autoConnect: false })).toThrow(/v or sid/)
  })
})
