// The typed event maps of the server, checked by the compiler (`pnpm typecheck` runs
// tsconfig.test.json): a regression here fails the build, not just a test.
import type { CloseReason, ParleyError, TransportName } from '@parley/protocol'
import parley, {
  type HandshakeRequest,
  type Middleware,
  type ParleyServer,
  type ServerSocket,
  type SocketEmitter,
  type TimeoutEmitter,
} from '@parley/server'
import Fastify from 'fastify'
import { describe, expectTypeOf, it } from 'vitest'

/** Events a client may send. */
interface FromClient {
  chat: (msg: { text: string }, ack: (reply: { ok: boolean }) => void) => void
  typing: (on: boolean) => void
}
/** Events the server may send. */
interface FromServer {
  news: (item: { title: string }) => void
  ask: (question: string, ack: (answer: number) => void) => void
}
interface Data {
  user: string
}

async function typedServer() {
  const app = Fastify()
  await app.register(parley)
  // Data is an interface: a plain cast of app.parley would not compile (TS2352); typed() does.
  return { app, io: app.parley.typed<FromClient, FromServer, Data>() }
}

describe('typed event maps (server)', () => {
  it('type listeners, acks, socket.data and middleware', async () => {
    const { app, io } = await typedServer()
    io.on('connection', (socket) => {
      expectTypeOf(socket).toEqualTypeOf<ServerSocket<FromClient, FromServer, Data>>()
      expectTypeOf(socket.data).toEqualTypeOf<Data>()
      expectTypeOf(socket.id).toEqualTypeOf<string>()
      expectTypeOf(socket.transport).toEqualTypeOf<TransportName | null>()
      expectTypeOf(socket.bufferedAmount).toEqualTypeOf<number>()

      socket.on('chat', (msg, ack) => {
        expectTypeOf(msg).toEqualTypeOf<{ text: string }>()
        expectTypeOf(ack).toEqualTypeOf<(reply: { ok: boolean }) => void>()
        ack({ ok: true })
        // @ts-expect-error: the reply is { ok: boolean }
        ack('yes')
      })
      socket.on('typing', (on) => expectTypeOf(on).toEqualTypeOf<boolean>())
      socket.on('disconnect', (reason) => expectTypeOf(reason).toEqualTypeOf<CloseReason>())
      socket.on('transport', (now, before) => {
        expectTypeOf(now).toEqualTypeOf<TransportName | null>()
        expectTypeOf(before).toEqualTypeOf<TransportName | null>()
      })
      // @ts-expect-error: clients do not send 'nope'
      socket.on('nope', () => {})
      // @ts-expect-error: 'typing' carries a boolean
      socket.on('typing', (on: string) => on)

      socket.use((packet, next) => {
        expectTypeOf(packet).toEqualTypeOf<
          [event: 'chat', msg: { text: string }] | [event: 'typing', on: boolean]
        >()
        if (packet[0] === 'chat') expectTypeOf(packet[1]).toEqualTypeOf<{ text: string }>()
        next()
      })
      socket.use(async ([event]) => {
        expectTypeOf(event).toEqualTypeOf<'chat' | 'typing'>()
      })
    })
    await app.close()
  })

  it('type emits and the replies they wait for', async () => {
    const { app, io } = await typedServer()
    io.on('connection', async (socket) => {
      socket.emit('news', { title: 'hi' })
      socket.volatile.emit('news', { title: 'hi' })
      // @ts-expect-error: the client does not listen to 'nope'
      socket.emit('nope')
      // @ts-expect-error: a title is a string
      socket.emit('news', { title: 1 })
      // @ts-expect-error: 'news' takes one argument
      socket.emit('news')

      expectTypeOf(socket.emitWithAck('ask', 'six times seven?')).toEqualTypeOf<Promise<number>>()
      expectTypeOf(socket.timeout(100).emitWithAck('ask', 'why?')).toEqualTypeOf<Promise<number>>()
      socket.emit('ask', 'why?', (answer) => expectTypeOf(answer).toEqualTypeOf<number>())
      socket.timeout(100).emit('ask', 'why?', (err) => {
        expectTypeOf(err).toEqualTypeOf<ParleyError<string> | null>()
      })
      // @ts-expect-error: the question is a string
      await socket.emitWithAck('ask', 42)
    })
    await app.close()
  })

  it('let an emit leave out the ack callback of an event that has one, as the client does', async () => {
    const { app, io } = await typedServer()
    io.on('connection', (socket) => {
      // Fire and forget: nobody hears the reply.
      socket.emit('ask', 'why?')
      socket.volatile.emit('ask', 'why?')
      socket.timeout(100).emit('ask', 'why?')
      expectTypeOf(socket.emit<'ask'>).parameters.toEqualTypeOf<
        ['ask', string, (answer: number) => void] | ['ask', string]
      >()
      // The payload is still checked, with or without the callback.
      // @ts-expect-error: the question is a string
      socket.emit('ask', 42)
      // @ts-expect-error: the question is a string
      socket.emit('ask', 42, (answer: number) => answer)
      // @ts-expect-error: the answer is a number
      socket.emit('ask', 'why?', (answer: string) => answer)
    })
    await app.close()
  })

  it('type the reply of timeout(ms).emit, as the client does', async () => {
    const { app, io } = await typedServer()
    io.on('connection', (socket) => {
      for (const timed of [socket.timeout(100), socket.volatile.timeout(100)]) {
        timed.emit('ask', 'why?', (error, answer) => {
          if (error) {
            expectTypeOf(error).toEqualTypeOf<ParleyError<string>>()
            expectTypeOf(answer).toEqualTypeOf<undefined>()
          } else {
            expectTypeOf(error).toEqualTypeOf<null>()
            expectTypeOf(answer).toEqualTypeOf<number>()
          }
        })
        // @ts-expect-error: the callback is error-first, its first parameter is not the answer
        timed.emit('ask', 'why?', (answer: number) => answer)
        // @ts-expect-error: the question is a string
        timed.emit('ask', 42, (error) => error)
      }
    })
    await app.close()
  })

  it("type a broadcast's callback as every socket's replies, and let it out", async () => {
    const { app, io } = await typedServer()
    io.on('connection', async (socket) => {
      for (const broadcast of [io.to('lobby'), socket.to('lobby'), socket.broadcast, io.timeout(100)]) {
        broadcast.emit('ask', 'why?')
        broadcast.emit('ask', 'why?', (error, answers) => {
          expectTypeOf(error).toEqualTypeOf<ParleyError<string> | null>()
          expectTypeOf(answers).toEqualTypeOf<number[]>()
        })
        // @ts-expect-error: a broadcast's callback hears every socket's reply, error first
        broadcast.emit('ask', 'why?', (answer: number) => answer)
        // @ts-expect-error: the question is a string
        broadcast.emit('ask', 42)
        expectTypeOf(broadcast.emitWithAck('ask', 'why?')).toEqualTypeOf<Promise<number[]>>()
        // @ts-expect-error: the question is a string
        await broadcast.emitWithAck('ask', 42)
        // @ts-expect-error: 'news' takes one argument
        broadcast.emit('news')
      }
    })
    io.emit('ask', 'why?')
    io.emit('ask', 'why?', (_error, answers) => expectTypeOf(answers).toEqualTypeOf<number[]>())
    // @ts-expect-error: a broadcast's callback hears every socket's reply, error first
    io.emit('ask', 'why?', (answer: number) => answer)
    await app.close()
  })

  it('take reply callbacks typed with the exported ParleyError, whatever its code', async () => {
    // A client's ERROR carries the application's own codes: `ParleyError` as a user writes it,
    // without a type argument, must name an error of any code.
    const { app, io } = await typedServer()
    io.on('connection', (socket) => {
      const show = (error: ParleyError) => `${error.code}: ${error.message}`
      socket.timeout(100).emit('ask', 'why?', (err: ParleyError | null) => err && show(err))
      io.timeout(100).emit('news', { title: 'hi' }, (err: ParleyError | null) => err && show(err))
    })
    await app.close()
  })

  it('name a handshake middleware declared apart from use() without a type argument', async () => {
    const app = Fastify()
    await app.register(parley)
    const auth: Middleware = (socket) => {
      expectTypeOf(socket).toEqualTypeOf<ServerSocket>()
      if (!socket.handshake.auth) throw new Error('no token')
    }
    app.parley.use(auth)
    await app.close()
  })

  it('keep the error-first callback of timeout(ms) through volatile, in either order', async () => {
    const { app, io } = await typedServer()
    io.on('connection', (socket) => {
      expectTypeOf(socket.volatile.timeout(100)).toEqualTypeOf<TimeoutEmitter<FromServer>>()
      expectTypeOf(socket.timeout(100).volatile).toEqualTypeOf<TimeoutEmitter<FromServer>>()
      expectTypeOf(socket.volatile.volatile).toEqualTypeOf<SocketEmitter<FromServer>>()
      for (const timed of [socket.volatile.timeout(100), socket.timeout(100).volatile]) {
        timed.emit('ask', 'why?', (err) => expectTypeOf(err).toEqualTypeOf<ParleyError<string> | null>())
        expectTypeOf(timed.emitWithAck('ask', 'why?')).toEqualTypeOf<Promise<number>>()
        // @ts-expect-error: the question is a string
        timed.emit('ask', 42)
      }
      // Without a timeout the callback still takes the reply alone.
      socket.volatile.volatile.emit('ask', 'why?', (answer) => expectTypeOf(answer).toEqualTypeOf<number>())
    })
    await app.close()
  })

  it('key schemas by the events a client may send', async () => {
    const { app, io } = await typedServer()
    io.schemas({ chat: { type: 'array', items: [{ type: 'object' }], minItems: 1 } })
    // @ts-expect-error: clients do not send 'nope'
    io.schemas({ nope: { type: 'array' } })
    await app.close()
  })

  it('take anything without maps', async () => {
    const app = Fastify()
    await app.register(parley)
    app.parley.on('connection', (socket) => {
      expectTypeOf(socket.data).toEqualTypeOf<Record<string, unknown>>()
      socket.on('anything', (a: number, b: string) => [a, b])
      socket.emit('anything', 1, { x: [1] })
      socket.use(([event, ...args], next) => {
        expectTypeOf(event).toEqualTypeOf<string>()
        expectTypeOf(args).toBeArray()
        next()
      })
      expectTypeOf(socket.emitWithAck('x')).toEqualTypeOf<Promise<unknown>>()
    })
    app.parley.schemas({ anything: true })
    await app.close()
  })

  it('type the reply callbacks without maps, so that they compile under strict', async () => {
    // Without maps every event takes `any`, which types no callback: `(reply) => ...` was an
    // implicit any (TS7006). A reply is `unknown`, as emitWithAck resolves with it.
    const app = Fastify()
    await app.register(parley)
    app.parley.on('connection', (socket) => {
      socket.emit('x', 1, (reply) => expectTypeOf(reply).toEqualTypeOf<unknown>())
      socket.emit('x', (reply) => expectTypeOf(reply).toEqualTypeOf<unknown>())
      socket.volatile.emit('x', 1, (reply) => expectTypeOf(reply).toEqualTypeOf<unknown>())
      socket.emit('x', { text: 'hi' }, (reply) => expectTypeOf(reply).toEqualTypeOf<unknown>())
      for (const timed of [socket.timeout(100), socket.volatile.timeout(100)]) {
        timed.emit('x', 1, (err, reply) => {
          expectTypeOf(err).toEqualTypeOf<ParleyError<string> | null>()
          expectTypeOf(reply).toEqualTypeOf<unknown>()
        })
        // An object literal before the callback takes the compiler down another path.
        timed.emit('x', { text: 'hi' }, (err) =>
          expectTypeOf(err).toEqualTypeOf<ParleyError<string> | null>(),
        )
      }
      socket
        .to('lobby')
        .timeout(100)
        .emit('x', 1, (err, replies) => {
          expectTypeOf(err).toEqualTypeOf<ParleyError<string> | null>()
          expectTypeOf(replies).toEqualTypeOf<unknown[]>()
        })
      // Anything is still taken: a callback typed by hand, a spread, any value last.
      socket.emit('x', (answer: number) => answer + 1)
      socket.emit('x', ...[1, 'two', { three: 3 }])
      socket.emit('x', 1, undefined)
    })
    app.parley.timeout(100).emit('x', (err, replies) => {
      expectTypeOf(err).toEqualTypeOf<ParleyError<string> | null>()
      expectTypeOf(replies).toEqualTypeOf<unknown[]>()
    })
    expectTypeOf(app.parley.timeout(100).emitWithAck('x')).toEqualTypeOf<Promise<unknown[]>>()
    await app.close()
  })

  it('keep the checks of a typed event that takes any number of arguments of one type', async () => {
    const app = Fastify()
    await app.register(parley)
    app.parley.typed<FromClient, { tags: (...tags: string[]) => void }>().on('connection', (socket) => {
      socket.emit('tags', 'a', 'b')
      // @ts-expect-error: a tag is a string
      socket.emit('tags', 'a', 2)
    })
    await app.close()
  })
})

describe('the plugin on an HTTP/2 Fastify', () => {
  it('registers over TLS, HTTP/1.1 allowed beside it, with no cast; app.parley is typed', async () => {
    const app = Fastify({ http2: true, https: { allowHTTP1: true } })
    await app.register(parley, { path: '/live' })
    expectTypeOf(app.parley).toEqualTypeOf<ParleyServer>()
    app.parley.on('connection', (socket) =>
      expectTypeOf(socket.transport).toEqualTypeOf<TransportName | null>(),
    )
    // Never called: its options are checked as on HTTP/1.1.
    // @ts-expect-error: `path` is a string
    const wrongOptions = () => app.register(parley, { path: 1 })
    expectTypeOf(wrongOptions).toBeFunction()
    await app.ready()
    await app.close()
  })

  it('registers over h2c (HTTP/2 without TLS) with no cast; app.parley is typed', async () => {
    const app = Fastify({ http2: true })
    await app.register(parley, { path: '/live' })
    expectTypeOf(app.parley).toEqualTypeOf<ParleyServer>()
    await app.ready()
    await app.close()
  })
})

describe('HandshakeRequest', () => {
  it('is still built as before it had url and params (a middleware test of a minor release before)', () => {
    const before: HandshakeRequest = {
      headers: { host: 'chat.example' },
      query: { v: '1' },
      address: '10.0.0.1',
    }
    expectTypeOf(before.url).toEqualTypeOf<string | undefined>()
    expectTypeOf(before.params).toEqualTypeOf<Record<string, string> | undefined>()
    const now: HandshakeRequest = { ...before, url: '/acme/parley/ws?v=1', params: { tenant: 'acme' } }
    expectTypeOf(now).toExtend<HandshakeRequest>()
  })
})
