// What the client sees of the server's checks: Fastify hooks on every transport request, event
// schemas, socket middleware and coded handler refusals. Each over every transport.
import { ErrorCode, ParleyError } from '@parley/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import { client, closeAll, next, startServer, type TestServer } from './helpers.js'

let server: TestServer | undefined
afterEach(closeAll)

describe('Fastify hooks', () => {
  it("that throw an error with a code of the application's reach the client with it, a 401 as a refusal", async () => {
    server = await startServer((app) => {
      app.addHook('onRequest', async () => {
        throw Object.assign(new Error('sign in first'), { statusCode: 401, code: 'APP_UNAUTHORIZED' })
      })
    })
    for (const transport of ['websocket', 'sse', 'polling'] as const) {
      const socket = client(server.url, { transports: [transport] })
      const [error, willRetry] = (await next(socket, 'connect_error')) as [ParleyError<string>, boolean]
      expect({ transport, code: error.code, message: error.message, status: error.details?.status }).toEqual({
        transport,
        code: 'APP_UNAUTHORIZED',
        message: 'sign in first',
        status: 401,
      })
      expect(willRetry).toBe(false)
    }
  })

  it('say in connect_error whether the client will retry, until reconnectionAttempts run out', async () => {
    // Unavailable, not refusing: worth trying again.
    server = await startServer((app) => {
      app.addHook('onRequest', async (_request, reply) =>
        reply.code(503).send({ code: 'BUSY', message: 'later' }),
      )
    })
    const socket = client(server.url, {
      reconnectionAttempts: 2,
      reconnectionDelay: 10,
      reconnectionDelayMax: 20,
    })
    const said: boolean[] = []
    socket.on('connect_error', (_error, willRetry) => said.push(willRetry))
    await next(socket, 'reconnect_failed', 10_000)
    expect(said).toEqual([true, true, false])
    expect(socket.active).toBe(false)
  })

  it('say disconnect before reconnect_failed when attempts are used up as a CLOSE arrives', async () => {
    let busy = true
    server = await startServer((app) => {
      app.addHook('onRequest', async (_request, reply) => {
        if (busy) return reply.code(503).send({ code: 'BUSY', message: 'later' })
      })
    })
    const socket = client(server.url, {
      reconnectionAttempts: 1,
      reconnectionDelay: 10,
      reconnectionDelayMax: 20,
    })
    const seen: string[] = []
    socket.on('connect_error', (error, willRetry) => {
      seen.push(`connect_error ${error.code} ${willRetry}`)
      busy = false
    })
    socket.on('connect', () => seen.push('connect'))
    socket.on('reconnect', (n) => seen.push(`reconnect ${n}`))
    // By then the client has stopped: its listener may connect again by hand.
    socket.on('disconnect', (reason) => seen.push(`disconnect ${reason} active ${socket.active}`))
    socket.on('reconnect_failed', () => seen.push('reconnect_failed'))
    // The one attempt allowed was used to get here: the server's CLOSE leaves none.
    await next(socket, 'reconnect', 5000)
    const failed = next(socket, 'reconnect_failed', 5000)
    await server.close()
    await failed
    expect(seen).toEqual([
      'connect_error BUSY true',
      'connect',
      'reconnect 1',
      'disconnect server shutdown active false',
      'reconnect_failed',
    ])
  })

  it('refuse the client: a 401 ends the attempt with connect_error and no automatic retry', async () => {
    const seen: string[] = []
    server = await startServer((app) => {
      app.addHook('onRequest', async (request, reply) => {
        seen.push(`${request.method} ${request.url.split('?')[0]}`)
        return reply.code(401).send({ code: 'AUTH_REQUIRED', message: 'log in first' })
      })
    })
    const socket = client(server.url, { reconnectionDelay: 10, reconnectionDelayMax: 20 })
    const retries: number[] = []
    socket.on('reconnect_attempt', (n: number) => retries.push(n))
    const [error, willRetry] = (await next(socket, 'connect_error')) as [ParleyError<string>, boolean]
    expect(error).toMatchObject({ code: 'AUTH_REQUIRED', message: 'log in first', details: { status: 401 } })
    expect(willRetry).toBe(false)
    // In Node, the refused upgrade's 401 is read (browsers hide it, and go on to SSE, which reads
    // the same 401): the server refuses this client, not a transport. No other transport is
    // tried, nothing retries.
    expect(seen).toEqual(['GET /parley/ws'])
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(retries).toEqual([])
    expect(seen).toHaveLength(1)
    expect(socket.active).toBe(false)
  })
})

describe.each(['websocket', 'sse', 'polling'] as const)('over %s', (transport) => {
  const opts = { transports: [transport], reconnection: false }

  it('takes messages up to the maxPayload the server states, above the default, on its first transport', async () => {
    server = await startServer(
      (app) => {
        app.parley.on('connection', (socket) => socket.emit('big', 'x'.repeat(1_500_000)))
      },
      { maxPayload: 2_000_000 },
    )
    const socket = client(server.url, opts)
    const errors: string[] = []
    socket.on('error', (error: ParleyError<string>) => errors.push(error.code))
    const [big] = (await next(socket, 'big', 10_000)) as [string]
    expect(big.length).toBe(1_500_000)
    expect(errors).toEqual([])
  })

  it("shows a Fastify onRequest hook's 401 in connect_error", async () => {
    server = await startServer((app) => {
      app.addHook('onRequest', async (request, reply) => {
        if (request.headers.authorization !== 'Bearer good') {
          return reply.code(401).send({ code: 'AUTH_REQUIRED', message: 'log in first' })
        }
      })
    })
    const socket = client(server.url, opts)
    const [error] = (await next(socket, 'connect_error')) as [ParleyError<string>]
    // Over WebSocket too, in Node: `ws` shows the refused upgrade's answer (browsers do not).
    expect(error).toMatchObject({ code: 'AUTH_REQUIRED', message: 'log in first' })
    expect(error.details).toMatchObject({ status: 401 })
    expect(socket.connected).toBe(false)
  })

  it('rejects a request that fails its schema, a middleware or a coded handler, with their codes', async () => {
    const handled: unknown[] = []
    server = await startServer((app) => {
      app.parley.schemas({
        say: {
          type: 'array',
          items: [{ type: 'object', properties: { text: { type: 'string' } }, required: ['text'] }],
          minItems: 1,
        },
      })
      app.parley.on('connection', (socket) => {
        socket.use(([event], next) => {
          if (event === 'admin') next(new ParleyError('FORBIDDEN', 'admins only'))
          else next()
        })
        socket.on('say', (msg: unknown, ack?: (r: string) => void) => {
          handled.push(msg)
          ack?.('said')
        })
        socket.on('admin', () => handled.push('admin'))
        socket.on('room', () => {
          throw new ParleyError('NO_SUCH_ROOM', 'no room "x"')
        })
      })
    })
    const socket = client(server.url, opts)
    await next(socket, 'connect')
    expect(await socket.emitWithAck('say', { text: 'hi' })).toBe('said')
    await expect(socket.emitWithAck('say', { text: 42 })).rejects.toMatchObject({
      code: ErrorCode.VALIDATION_FAILED,
      message: '"say": args/0/text must be string',
    })
    await expect(socket.emitWithAck('admin')).rejects.toMatchObject({
      code: 'FORBIDDEN',
      message: 'admins only',
    })
    await expect(socket.emitWithAck('room', 'x')).rejects.toMatchObject({
      code: 'NO_SUCH_ROOM',
      message: 'no room "x"',
    })
    // Without an ack, a refusal arrives as the socket's 'error' event.
    const refused = next(socket, 'error')
    socket.emit('say', {})
    const [error] = (await refused) as [ParleyError<string>]
    expect(error).toMatchObject({
      code: ErrorCode.VALIDATION_FAILED,
      message: '"say": args/0 must have required property \'text\'',
    })
    expect(handled).toEqual([{ text: 'hi' }])
  })
})
