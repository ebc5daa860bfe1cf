// A server and a client compiled against the same event maps agree on every event: what one end
// sends, the other's listener takes, and the reply one end's ack gives is what the other's
// emitWithAck resolves with. Checked by the compiler (`pnpm typecheck` compiles the tests): both
// packages take these types from @parley/protocol, and a copy of them that drifted in either
// would fail here.
import * as client from '@parley/client'
import type * as protocol from '@parley/protocol'
import type * as server from '@parley/server'
import parley from '@parley/server'
import Fastify from 'fastify'
import { describe, expectTypeOf, it } from 'vitest'

/** Events the client sends and the server listens to. */
interface ClientToServer {
  chat: (msg: { text: string }, ack: (reply: { ok: boolean; id: number }) => void) => void
  typing: (on: boolean) => void
}

/** Events the server sends and the client listens to. */
interface ServerToClient {
  ask: (question: string, ack: (answer: number) => void) => void
  news: (title: string) => void
}

/** What `socket.emitWithAck(event)` resolves with. */
type Resolved<T> = T extends (...args: never[]) => Promise<infer R> ? R : never

describe('a server and a client on the same event maps', () => {
  it("take for a client's emit with ack what the server's handler is typed with", async () => {
    const app = Fastify()
    await app.register(parley)
    const io = app.parley.typed<ClientToServer, ServerToClient>()
    const socket = client.connect<ServerToClient, ClientToServer>('http://127.0.0.1:1', {
      autoConnect: false,
    })
    io.on('connection', (serverSocket) => {
      serverSocket.on('chat', (msg, ack) => {
        // The message is what the client's emit takes, the reply what its emitWithAck gives.
        expectTypeOf(msg).toEqualTypeOf<Parameters<typeof socket.emitWithAck<'chat'>>[1]>()
        expectTypeOf(ack).parameter(0).toEqualTypeOf<Resolved<typeof socket.emitWithAck<'chat'>>>()
      })
      // And the other way round: the server asks, the client's listener answers.
      expectTypeOf<Resolved<typeof serverSocket.emitWithAck<'ask'>>>().toEqualTypeOf<number>()
    })
    socket.on('ask', (question, ack) => {
      expectTypeOf(question).toEqualTypeOf<string>()
      expectTypeOf(ack).toEqualTypeOf<(answer: number) => void>()
    })
    socket.emit('chat', { text: 'hi' }, (reply) =>
      expectTypeOf(reply).toEqualTypeOf<{ ok: boolean; id: number }>(),
    )
    // Its type alone: called, the never-connected client's disconnect() below would reject it.
    expectTypeOf<ReturnType<typeof socket.emitWithAck<'chat'>>>().toEqualTypeOf<
      Promise<{ ok: boolean; id: number }>
    >()
    socket.disconnect()
    await app.close()
  })

  it('type the emits of one map alike on both ends', async () => {
    // One map both ways: each end's emits of an event take the same arguments.
    type Both = ClientToServer & ServerToClient
    const app = Fastify()
    await app.register(parley)
    const io = app.parley.typed<Both, Both>()
    const socket = client.connect<Both, Both>('http://127.0.0.1:1', { autoConnect: false })
    io.on('connection', (serverSocket) => {
      expectTypeOf(socket.emit<'chat'>).parameters.toEqualTypeOf<
        Parameters<typeof serverSocket.emit<'chat'>>
      >()
      // An event without an ack callback keeps every argument when a reply is awaited anyway.
      expectTypeOf(socket.emitWithAck<'typing'>).parameters.toEqualTypeOf<['typing', boolean]>()
      expectTypeOf(socket.emitWithAck<'typing'>).parameters.toEqualTypeOf<
        Parameters<typeof serverSocket.emitWithAck<'typing'>>
      >()
      expectTypeOf(socket.emitWithAck<'chat'>).parameters.toEqualTypeOf<
        Parameters<typeof serverSocket.emitWithAck<'chat'>>
      >()
      // Under a timeout, the callback may be left out on either end.
      serverSocket.timeout(100).emit('chat', { text: 'hi' })
      socket.timeout(100).emit('chat', { text: 'hi' })
    })
    socket.disconnect()
    await app.close()
  })

  it('name the same helper types in both packages', () => {
    type Chat = ClientToServer['chat']
    expectTypeOf<client.EmitArgs<Chat>>().toEqualTypeOf<server.EmitArgs<Chat>>()
    expectTypeOf<client.TimedArgs<Chat>>().toEqualTypeOf<server.TimedArgs<Chat>>()
    expectTypeOf<client.ErrorOnlyArgs<Chat>>().toEqualTypeOf<server.ErrorOnlyArgs<Chat>>()
    expectTypeOf<client.ArgsWithoutAck<Chat>>().toEqualTypeOf<server.ArgsWithoutAck<Chat>>()
    expectTypeOf<client.AckReply<Chat>>().toEqualTypeOf<server.AckReply<Chat>>()
    expectTypeOf<client.DefaultEvents>().toEqualTypeOf<protocol.DefaultEventsMap>()
  })
})
