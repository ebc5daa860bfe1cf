// The typed event maps: what compiles and what a listener or reply is typed as.
import { describe, expectTypeOf, it } from 'vitest'
import { connect, type ParleyError, type TransportName } from '../src/index.js'

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
})
