// The typed event maps: what compiles and what a listener or reply is typed as.
import { describe, expect, expectTypeOf, it } from 'vitest'
import {
  connect,
  type FlaggedEmitter,
  type ParleyError,
  type TimedEmitter,
  type TransportName,
} from '../src/index.js'

interface ServerEvents {
  chat: (msg: { from: string; text: string }) => void
  question: (n: number, ack: (answer: number) => void) => void
}
interface ClientEvents {
  chat: (msg: { text: string }, ack: (reply: { ok: boolean }) => void) => void
  ping: () => void
}

describe('typed event maps', () => {
  it('types listeners, emits and replies', () => {
    const socket = connect<ServerEvents, ClientEvents>('http://127.0.0.1:1', { autoConnect: false })
    socket.on('chat', (msg) => expectTypeOf(msg).toEqualTypeOf<{ from: string; text: string }>())
    socket.on('question', (n, ack) => {
      expectTypeOf(n).toEqualTypeOf<number>()
      expectTypeOf(ack).toEqualTypeOf<(answer: number) => void>()
    })
    socket.on('connect_error', (err) => expectTypeOf(err).toEqualTypeOf<ParleyError<string>>())
    socket.on('transport', (now, before) => {
      expectTypeOf(now).toEqualTypeOf<TransportName>()
      expectTypeOf(before).toEqualTypeOf<TransportName>()
    })
    expectTypeOf(socket.emitWithAck<'chat'>).returns.toEqualTypeOf<Promise<{ ok: boolean }>>()
    expectTypeOf(socket.emit<'ping'>).parameters.toEqualTypeOf<['ping']>()
    // @ts-expect-error: the server does not listen to 'nope'
    socket.emit('nope')
    // An event declared with an ack may be sent without its callback (nobody hears the reply),
    socket.emit('chat', { text: 'hello' })
    socket.emit('chat', { text: 'hello' }, (reply) => expectTypeOf(reply).toEqualTypeOf<{ ok: boolean }>())
    // but its payload is still checked.
    // @ts-expect-error: 'txt' is not a field of the chat message
    socket.emit('chat', { txt: 'hello' })
    socket.volatile.emit('chat', { text: 'hello' })
    socket.disconnect()
  })

  it('types the error-first callback of timeout(ms).emit', () => {
    const socket = connect<ServerEvents, ClientEvents>('http://127.0.0.1:1', { autoConnect: false })
    socket.timeout(1000).emit('chat', { text: 'hi' }, (error, reply) => {
      if (error) {
        expectTypeOf(error).toEqualTypeOf<ParleyError<string>>()
        expectTypeOf(reply).toEqualTypeOf<undefined>()
      } else {
        expectTypeOf(error).toEqualTypeOf<null>()
        expectTypeOf(reply).toEqualTypeOf<{ ok: boolean }>()
      }
    })
    // Events without an ack keep their arguments as they are.
    socket.timeout(1000).emit('ping')
    // @ts-expect-error: the callback is error-first, its first parameter is not the reply
    socket.timeout(1000).emit('chat', { text: 'hi' }, (reply: { ok: boolean }) => reply)
    const coded = expect.objectContaining({ name: 'TypeError', code: 'PARLEY_INVALID_ARGUMENT' })
    expect(() => socket.timeout(-1)).toThrow(coded)
    expect(() => socket.timeout(Number.NaN)).toThrow(coded)
    // Plain JavaScript: what compares as a number is not one (the server requires a number too).
    for (const notANumber of ['5', '', null, [1], true]) {
      expect(() => socket.timeout(notANumber as unknown as number)).toThrow(coded)
    }
    socket.disconnect()
  })

  it('takes an error-first callback of timeout(ms).emit that reads the error alone', () => {
    // `(err) => ...`: only whether the reply came, as socket.io's users write it.
    const socket = connect<ServerEvents, ClientEvents>('http://127.0.0.1:1', { autoConnect: false })
    socket.timeout(1000).emit('chat', { text: 'hi' }, (error) => {
      expectTypeOf(error).toEqualTypeOf<ParleyError<string> | null>()
    })
    socket.timeout(1000).volatile.emit('chat', { text: 'hi' }, (error: ParleyError | null) => error?.code)
    socket.timeout(1000).emit('chat', { text: 'hi' }, () => {})
    // @ts-expect-error: the payload is still checked
    socket.timeout(1000).emit('chat', { txt: 'hi' }, (error) => error)
    // @ts-expect-error: 'ping' asks for no reply, so it takes no callback
    socket.timeout(1000).emit('ping', (error) => error)
    socket.disconnect()
  })

  it('keeps the error-first callback of timeout(ms) through volatile, in either order', () => {
    const socket = connect<ServerEvents, ClientEvents>('http://127.0.0.1:1', { autoConnect: false })
    expectTypeOf(socket.volatile.timeout(1000)).toEqualTypeOf<TimedEmitter<ClientEvents>>()
    expectTypeOf(socket.timeout(1000).volatile).toEqualTypeOf<TimedEmitter<ClientEvents>>()
    expectTypeOf(socket.volatile.volatile).toEqualTypeOf<FlaggedEmitter<ClientEvents>>()
    for (const timed of [socket.volatile.timeout(1000), socket.timeout(1000).volatile]) {
      timed.emit('chat', { text: 'hi' }, (error, reply) => {
        if (error) expectTypeOf(reply).toEqualTypeOf<undefined>()
        else expectTypeOf(reply).toEqualTypeOf<{ ok: boolean }>()
      })
      expectTypeOf(timed.emitWithAck<'chat'>).returns.toEqualTypeOf<Promise<{ ok: boolean }>>()
      // @ts-expect-error: the callback is error-first, its first parameter is not the reply
      timed.emit('chat', { text: 'hi' }, (reply: { ok: boolean }) => reply)
    }
    // Without a timeout the callback still takes the reply alone.
    socket.volatile.volatile.emit('chat', { text: 'hi' }, (reply) =>
      expectTypeOf(reply).toEqualTypeOf<{ ok: boolean }>(),
    )
    const coded = expect.objectContaining({ name: 'TypeError', code: 'PARLEY_INVALID_ARGUMENT' })
    expect(() => socket.volatile.timeout(-1)).toThrow(coded)
    expect(() => socket.timeout(1000).volatile.timeout(Number.NaN)).toThrow(coded)
    socket.disconnect()
  })

  it('takes listeners and callbacks typed with the exported ParleyError, whatever its code', () => {
    // A server's refusal or reply carries the application's own codes (`AUTH_EXPIRED`), so the
    // socket hands out a ParleyError of any code: `ParleyError` as a user writes it, without
    // a type argument, must name that, not only the codes of Parley's own table.
    const socket = connect<ServerEvents, ClientEvents>('http://127.0.0.1:1', { autoConnect: false })
    const show = (error: ParleyError) => `${error.code}: ${error.message}`
    socket.on('connect_error', (error: ParleyError, willRetry: boolean) => show(error) + willRetry)
    socket.on('transport_error', (_transport, error: ParleyError) => show(error))
    socket.on('error', show)
    socket
      .timeout(1000)
      .emit('chat', { text: 'hi' }, (error: ParleyError | null, reply) => (error ? show(error) : reply))
    expectTypeOf<ParleyError<'AUTH_EXPIRED'>>().toExtend<ParleyError>()
    socket.disconnect()
  })

  it('accepts anything without maps', () => {
    const socket = connect('http://127.0.0.1:1', { autoConnect: false })
    socket.on('anything', (a: number, b: string) => [a, b])
    socket.emit('anything', 1, { x: [1] })
    const reply = socket.emitWithAck('x')
    expectTypeOf(reply).toEqualTypeOf<Promise<unknown>>()
    // The session ends before any reply: the promise must say so, not dangle.
    reply.catch(() => undefined)
    socket.disconnect()
  })

  it('types the reply callbacks of an untyped socket, so that they compile under strict', () => {
    // Without maps every event takes `any`, which types no callback: `(reply) => ...` was an
    // implicit any (TS7006). A reply is `unknown`, as emitWithAck resolves with it.
    const socket = connect('http://127.0.0.1:1', { autoConnect: false })
    socket.emit('x', 1, (reply) => expectTypeOf(reply).toEqualTypeOf<unknown>())
    socket.emit('x', { text: 'hi' }, (reply) => expectTypeOf(reply).toEqualTypeOf<unknown>())
    socket.emit('x', (reply) => expectTypeOf(reply).toEqualTypeOf<unknown>())
    socket.volatile.emit('x', 1, (reply) => expectTypeOf(reply).toEqualTypeOf<unknown>())
    for (const timed of [
      socket.timeout(1000),
      socket.timeout(1000).volatile,
      socket.volatile.timeout(1000),
    ]) {
      timed.emit('x', 1, (error, reply) => {
        expectTypeOf(error).toEqualTypeOf<ParleyError<string> | null>()
        if (error) expectTypeOf(reply).toEqualTypeOf<undefined>()
        else expectTypeOf(reply).toEqualTypeOf<unknown>()
      })
      // An object literal before the callback takes the compiler down another path.
      timed.emit('x', { text: 'hi' }, (error, reply) => {
        expectTypeOf(error).toEqualTypeOf<ParleyError<string> | null>()
        expectTypeOf(reply).toEqualTypeOf<unknown>()
      })
      timed.emit('x', (error) => expectTypeOf(error).toEqualTypeOf<ParleyError<string> | null>())
      timed.emit('x', { text: 'hi' }, (error) =>
        expectTypeOf(error).toEqualTypeOf<ParleyError<string> | null>(),
      )
    }
    // Anything is still taken: a callback typed by hand, a spread, any value last.
    socket.emit('x', (reply: { ok: boolean }) => reply.ok)
    socket.emit('x', ...[1, 'two', { three: 3 }])
    socket.emit('x', 1, undefined)
    socket.timeout(1000).emit('x', 'no callback')
    socket.disconnect()
  })

  it('keeps the checks of a typed event that takes any number of arguments of one type', () => {
    const socket = connect<ServerEvents, { tags: (...tags: string[]) => void }>('http://127.0.0.1:1', {
      autoConnect: false,
    })
    socket.emit('tags', 'a', 'b')
    // @ts-expect-error: a tag is a string
    socket.emit('tags', 'a', 2)
    socket.disconnect()
  })
})
