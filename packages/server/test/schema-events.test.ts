// The schema-first path: one TypeBox declaration is both the schema the server checks and the
// event map both ends compile against. The types are checked by `pnpm typecheck`
// (tsconfig.test.json); the run-time half uses a real server and the real client.
import {
  type EventsFromSchemas as ClientEventsFromSchemas,
  connect,
  type ParleyError,
  type Socket,
} from '@parley/client'
import type { EventsFromSchemas, SchemaType, ServerSocket } from '@parley/server'
import { type Static, Type } from '@sinclair/typebox'
import { describe, expect, expectTypeOf, it } from 'vitest'
import { closedAfterEach } from './closed-after-each.js'
import { startServer, until } from './helpers.js'

const Message = Type.Object({
  text: Type.String({ minLength: 1, maxLength: 20 }),
  to: Type.Optional(Type.String()),
})
/** The arguments of each client event: checked at run time, and the event map's source. */
const fromClient = {
  chat: Type.Tuple([Message]),
  move: Type.Tuple([Type.Integer(), Type.Integer()]),
  tags: Type.Array(Type.String()),
}
/** What the events that want a reply are answered with. */
const replies = { chat: Type.Object({ ok: Type.Boolean(), length: Type.Integer() }) }
type FromClient = EventsFromSchemas<typeof fromClient, typeof replies>

const fromServer = { news: Type.Tuple([Type.String()]) }
type FromServer = EventsFromSchemas<typeof fromServer>

describe('events declared by TypeBox schemas (types)', () => {
  it('read a schema as TypeBox does', () => {
    expectTypeOf<SchemaType<typeof Message>>().toEqualTypeOf<Static<typeof Message>>()
    expectTypeOf<SchemaType<typeof fromClient.move>>().toEqualTypeOf<[number, number]>()
  })

  it('make an event map: arguments from the tuple, the ack from the reply schema', () => {
    expectTypeOf<FromClient>().toEqualTypeOf<{
      chat: (
        msg: { text: string; to?: string },
        ack: (reply: { ok: boolean; length: number }) => void,
      ) => void
      move: (x: number, y: number) => void
      tags: (...tags: string[]) => void
    }>()
    expectTypeOf<FromServer>().toEqualTypeOf<{ news: (text: string) => void }>()
    // The client reads the same schemas the same way.
    expectTypeOf<ClientEventsFromSchemas<typeof fromClient, typeof replies>>().toEqualTypeOf<FromClient>()
  })

  it('refuse a schema that is not of an arguments array, and a reply for no event', () => {
    // @ts-expect-error: the first argument's schema given alone, not the arguments array
    type NotArguments = EventsFromSchemas<{ chat: typeof Message }>
    // @ts-expect-error: no event 'nope' to reply to
    type NoEvent = EventsFromSchemas<typeof fromClient, { nope: typeof Message }>
    expectTypeOf<NotArguments | NoEvent>().not.toBeNever()
  })

  it('type the handlers, the schemas() call and the client', () => {
    async function compileOnly(
      io: ServerSocket<FromClient, FromServer>,
      client: Socket<FromServer, FromClient>,
    ) {
      io.on('chat', (msg, ack) => {
        expectTypeOf(msg).toEqualTypeOf<{ text: string; to?: string }>()
        ack({ ok: true, length: msg.text.length })
        // @ts-expect-error: the reply is { ok, length }
        ack({ ok: true })
      })
      io.on('move', (x, y) => expectTypeOf(x + y).toBeNumber())
      io.emit('news', 'hello')
      client.emit('move', 1, 2)
      // @ts-expect-error: a message is { text }
      client.emit('chat', { body: 'hi' })
      // @ts-expect-error: move takes two integers
      client.emit('move', 1)
      const reply = await client.emitWithAck('chat', { text: 'hi' })
      expectTypeOf(reply).toEqualTypeOf<{ ok: boolean; length: number }>()
    }
    expectTypeOf(compileOnly).toBeFunction()
  })
})

const opened = closedAfterEach()

describe('events declared by TypeBox schemas (run time)', () => {
  it('refuse a bad payload with PARLEY_VALIDATION_FAILED and hand a good one to the handler', async () => {
    const got: Static<typeof Message>[] = []
    opened.started = await startServer({}, (app) => {
      const io = app.parley.typed<FromClient, FromServer>().schemas(fromClient)
      io.on('connection', (socket) => {
        socket.on('chat', (msg, ack) => {
          got.push(msg)
          ack({ ok: true, length: msg.text.length })
        })
      })
    })
    const client = connect<FromServer, FromClient>(opened.started.base, {
      transports: ['websocket'],
      reconnection: false,
    })
    opened.parleyClients.push(client)

    expect(await client.timeout(3000).emitWithAck('chat', { text: 'hello' })).toEqual({ ok: true, length: 5 })

    const refused = await client
      .timeout(3000)
      .emitWithAck('chat', { text: 42 } as never)
      .then(
        () => undefined,
        (error: ParleyError<string>) => error,
      )
    expect(refused).toMatchObject({
      code: 'PARLEY_VALIDATION_FAILED',
      message: '"chat": args/0/text must be string',
    })

    // Without a reply wanted, the refusal comes as the client's `error` event.
    const errors: ParleyError<string>[] = []
    client.on('error', (error) => errors.push(error))
    client.emit('chat', { text: '' })
    await until(() => errors.length === 1)
    expect(errors[0]).toMatchObject({
      code: 'PARLEY_VALIDATION_FAILED',
      message: '"chat": args/0/text must NOT have fewer than 1 characters',
    })
    expect(got).toEqual([{ text: 'hello' }])
  })
})
