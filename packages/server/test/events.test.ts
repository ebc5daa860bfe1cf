// Incoming events on their way to the handlers: schemas, per-socket middleware, and refusals
// with the application's own codes.
import { Writable } from 'node:stream'
import { connect } from '@parley/client'
import { type EventPacket, type Packet, PacketType, ParleyError } from '@parley/protocol'
import type { ParleyServerOptions, ServerSocket } from '@parley/server'
import Fastify from 'fastify'
import { describe, expect, it } from 'vitest'
import { ODD_ERRORS } from '../../../test/support/odd-values.js'
import { unheard } from '../../../test/support/unheard.js'
import parley from '../src/index.js'
import { closedAfterEach } from './closed-after-each.js'
import { sleep, startServer, until } from './helpers.js'
import { rawConnect } from './raw-client.js'

const opened = closedAfterEach()

async function one(setup: (socket: ServerSocket) => void, options: ParleyServerOptions = {}) {
  const sockets: ServerSocket[] = []
  opened.started = await startServer(options, (app) => {
    app.parley.schemas({
      chat: {
        type: 'array',
        items: [
          {
            type: 'object',
            properties: { text: { type: 'string', maxLength: 10 } },
            required: ['text'],
            additionalProperties: false,
          },
        ],
        minItems: 1,
        maxItems: 1,
      },
      mail: { type: 'array', items: [{ type: 'string', format: 'email' }], minItems: 1 },
    })
    app.parley.on('connection', (s) => {
      setup(s)
      sockets.push(s)
    })
  })
  const client = await rawConnect('websocket', opened.started.base)
  opened.clients.push(client)
  await until(() => sockets.length === 1)
  return { socket: sockets[0]!, client }
}

const event = (seq: number, name: string, args: unknown[], ackId = 0): EventPacket =>
  ({ type: PacketType.EVENT, seq, name, args, ackId }) as EventPacket
const answerTo = (ackId: number) => (p: Packet) =>
  (p.type === PacketType.REPLY || p.type === PacketType.ERROR) && p.ackId === ackId
const notice = (p: Packet) => p.type === PacketType.ERROR && p.ackId === 0

describe('event schemas', () => {
  it('keep invalid arguments from the handler and answer PARLEY_VALIDATION_FAILED', async () => {
    const got: unknown[] = []
    const { client } = await one((s) => {
      s.on('chat', (msg: unknown, ack?: (r: string) => void) => {
        got.push(msg)
        ack?.('ok')
      })
    })
    await client.send(
      event(1, 'chat', [{ text: 'hi' }], 1),
      event(2, 'chat', [{ text: 5 }], 2),
      event(3, 'chat', [{ text: 'a very long text' }]),
      event(4, 'chat', [{ text: 'hi', extra: true }], 3),
      event(5, 'chat', [], 4),
    )
    expect(await client.next(answerTo(1))).toMatchObject({ type: PacketType.REPLY, args: ['ok'] })
    expect(await client.next(answerTo(2))).toMatchObject({
      type: PacketType.ERROR,
      code: 'PARLEY_VALIDATION_FAILED',
      message: '"chat": args/0/text must be string',
    })
    // Without an ack id, the refusal is a notice (the client's 'error' event).
    expect(await client.next(notice)).toMatchObject({
      code: 'PARLEY_VALIDATION_FAILED',
      message: '"chat": args/0/text must NOT have more than 10 characters',
    })
    expect(await client.next(answerTo(3))).toMatchObject({ code: 'PARLEY_VALIDATION_FAILED' })
    expect(await client.next(answerTo(4))).toMatchObject({
      message: '"chat": args must NOT have fewer than 1 items',
    })
    expect(got).toEqual([{ text: 'hi' }])
  })

  it('know formats, and leave events without a schema alone', async () => {
    const got: unknown[] = []
    const { client } = await one((s) => {
      s.on('mail', (to: string, ack: (r: string) => void) => ack(to))
      s.on('free', (...args: unknown[]) => got.push(args))
    })
    await client.send(
      event(1, 'mail', ['someone@example.com'], 1),
      event(2, 'mail', ['not an address'], 2),
      event(3, 'free', [1, 'two', { three: 3 }]),
    )
    expect(await client.next(answerTo(1))).toMatchObject({ args: ['someone@example.com'] })
    expect(await client.next(answerTo(2))).toMatchObject({
      message: '"mail": args/0 must match format "email"',
    })
    await until(() => got.length === 1)
    expect(got).toEqual([[1, 'two', { three: 3 }]])
  })

  it('cut what is wrong at 1024 characters, never inside one: the path may hold the client’s keys', async () => {
    const { client } = await one((s) => s.on('tags', () => {}))
    opened.started!.app.parley.schemas({
      tags: { type: 'array', items: [{ type: 'object', additionalProperties: { type: 'string' } }] },
    })
    // `args/0/` and the key: its emoji straddles the 1024th character.
    const key = `${'k'.repeat(1024 - 'args/0/'.length - 1)}😀`
    await client.send(event(1, 'tags', [{ [key]: 5 }], 1))
    expect(await client.next(answerTo(1))).toMatchObject({
      code: 'PARLEY_VALIDATION_FAILED',
      message: `"tags": args/0/${'k'.repeat(1016)}`,
    })
  })

  it('replace an event’s schema with a new one, the same $id included', async () => {
    const { client } = await one((s) => s.on('note', (text: unknown, ack: (r: unknown) => void) => ack(text)))
    const parley = opened.started!.app.parley
    parley.schemas({ note: { $id: 'note', type: 'array', items: [{ type: 'string' }], minItems: 1 } })
    // A new version of the same schema, as a reload or a second declaration would give.
    parley.schemas({ note: { $id: 'note', type: 'array', items: [{ type: 'integer' }], minItems: 1 } })
    // Two events may still not share an $id with schemas that differ: a $ref would be ambiguous.
    expect(() =>
      parley.schemas({ other: { $id: 'note', type: 'array', items: [{ type: 'boolean' }] } }),
    ).toThrow(/schema of "other" does not compile: schema with key or id "note" already exists/)
    // A batch refused for another schema adds none of its own: given again, its schemas compile.
    const ps = { $id: 'ps', type: 'array' }
    expect(() => parley.schemas({ ps, bad: { type: 'array', itemz: [] } })).toThrow(/"bad" does not compile/)
    parley.schemas({ ps: { ...ps, maxItems: 1 } })
    await client.send(event(1, 'note', [7], 1), event(2, 'note', ['seven'], 2))
    expect(await client.next(answerTo(1))).toMatchObject({ args: [7] })
    expect(await client.next(answerTo(2))).toMatchObject({
      code: 'PARLEY_VALIDATION_FAILED',
      message: '"note": args/0 must be integer',
    })
  })

  it('are compiled when declared: a bad schema or a reserved name throws at once', async () => {
    const app = Fastify()
    await app.register(parley)
    expect(() => app.parley.schemas({ x: { type: 'array', itemz: [] } })).toThrow(
      /schema of "x" does not compile: strict mode: unknown keyword: "itemz"/,
    )
    expect(() => app.parley.schemas({ connect: { type: 'array' } })).toThrow(/not an event name/)
    expect(() => app.parley.schemas({ y: 'array' as never })).toThrow(/must be a JSON Schema/)
    await app.close()
  })

  it('are synchronous: an $async schema is refused at once, and none of its batch is added', async () => {
    const got: unknown[] = []
    const { client } = await one((s) => {
      s.on('move', (...args: unknown[]) => got.push(args))
      s.on('mail', (...args: unknown[]) => got.push(args))
    })
    const schemas = {
      mail: { type: 'array', maxItems: 0 },
      move: { $async: true, type: 'array', items: [{ type: 'integer' }], minItems: 1 },
    }
    expect(() => opened.started!.app.parley.schemas(schemas)).toThrow(TypeError)
    expect(() => opened.started!.app.parley.schemas(schemas)).toThrow(
      expect.objectContaining({ code: 'PARLEY_INVALID_ARGUMENT' }),
    )
    expect(() => opened.started!.app.parley.schemas(schemas)).toThrow(
      'schemas: the schema of "move" is asynchronous ($async); events are checked synchronously',
    )
    // Nested in a synchronous schema, Ajv refuses it itself.
    expect(() =>
      opened.started!.app.parley.schemas({
        move: { type: 'array', items: [{ $async: true, type: 'integer' }] },
      }),
    ).toThrow(/schema of "move" does not compile: async schema in sync schema/)
    // The schemas declared before are in force, the refused ones are not.
    await client.send(event(1, 'move', ['not an integer']), event(2, 'mail', ['nobody'], 1))
    expect(await client.next(answerTo(1))).toMatchObject({
      code: 'PARLEY_VALIDATION_FAILED',
      message: '"mail": args/0 must match format "email"',
    })
    expect(got).toEqual([['not an integer']])
  })

  it('must describe the arguments array: the schema of one argument alone is refused at once', async () => {
    const app = Fastify()
    await app.register(parley)
    expect(() =>
      app.parley.schemas({ chat: { type: 'object', properties: { text: { type: 'string' } } } }),
    ).toThrow(/schema of "chat" must describe its arguments array .* top level is of type "object"/)
    expect(() => app.parley.schemas({ chat: { properties: { text: { type: 'string' } } } })).toThrow(
      /top level describes an object/,
    )
    // What it should have been, and the forms that need no type at the top.
    app.parley.schemas({
      chat: { type: 'array', items: [{ type: 'object', properties: { text: { type: 'string' } } }] },
      any: true,
      either: {
        anyOf: [
          { type: 'array', maxItems: 0 },
          { type: 'array', minItems: 2 },
        ],
      },
    })
    await app.close()
  })
})

describe('socket middleware', () => {
  it('run in order before the handlers, and may change the arguments', async () => {
    const seen: string[] = []
    const got: unknown[] = []
    const { client } = await one((s) => {
      s.use(([event], next) => {
        seen.push(`first ${event}`)
        next()
      })
      s.use(async (packet) => {
        await sleep(5)
        seen.push(`second ${packet[0]}`)
        packet[1] = { text: `${(packet[1] as { text: string }).text}!` }
      })
      s.on('chat', (msg: unknown) => got.push(msg))
    })
    await client.send(event(1, 'chat', [{ text: 'a' }]), event(2, 'chat', [{ text: 'b' }]))
    await until(() => got.length === 2)
    expect(got).toEqual([{ text: 'a!' }, { text: 'b!' }])
    expect(seen).toEqual(['first chat', 'second chat', 'first chat', 'second chat'])
  })

  it('refuse with next(err), a throw or a rejection: an application code and its message reach the client', async () => {
    const got: unknown[] = []
    const { client } = await one((s) => {
      s.use((packet, next) => {
        if (packet[0] === 'next') next(new ParleyError('FORBIDDEN', 'not in this room'))
        else if (packet[0] === 'throw') throw new Error('plain failure')
        else next()
      })
      s.use(async ([event]) => {
        if (event === 'reject') throw Object.assign(new Error('too fast'), { code: 'RATE_LIMITED' })
        if (event === 'badcode') throw Object.assign(new Error('lower case code'), { code: 'nope' })
      })
      for (const name of ['next', 'throw', 'reject', 'badcode', 'ok']) {
        s.on(name, (ack?: (r: string) => void) => {
          got.push(name)
          ack?.('ok')
        })
      }
    })
    await client.send(
      event(1, 'next', [], 1),
      event(2, 'throw', [], 2),
      event(3, 'reject', [], 3),
      event(4, 'badcode', [], 4),
      event(5, 'next', []),
      event(6, 'ok', [], 5),
    )
    expect(await client.next(answerTo(1))).toMatchObject({ code: 'FORBIDDEN', message: 'not in this room' })
    // Without a code of the application's, the error's own message stays on the server.
    expect(await client.next(answerTo(2))).toMatchObject({
      code: 'PARLEY_HANDLER_ERROR',
      message: 'refused by middleware',
    })
    expect(await client.next(answerTo(3))).toMatchObject({ code: 'RATE_LIMITED', message: 'too fast' })
    expect(await client.next(answerTo(4))).toMatchObject({
      code: 'PARLEY_HANDLER_ERROR',
      message: 'refused by middleware',
    })
    expect(await client.next(notice)).toMatchObject({ code: 'FORBIDDEN' })
    expect(await client.next(answerTo(5))).toMatchObject({ type: PacketType.REPLY, args: ['ok'] })
    expect(got).toEqual(['ok'])
  })

  it('hide the message of an error without a code of the application’s, and log that error', async () => {
    const lines: {
      level: number
      msg: string
      event?: string
      count?: number
      err?: { message?: string }
    }[] = []
    const stream = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line))
        done()
      },
    })
    const handled: string[] = []
    opened.started = await startServer(
      {},
      (app) => {
        app.parley.on('connection', (s) => {
          s.use(async ([name]) => {
            // What a database driver throws: its text is for the operator, not for the client.
            if (name === 'query') throw new Error('relation "users" does not exist')
            if (name === 'admin') throw new ParleyError('FORBIDDEN', 'admins only')
          })
          for (const name of ['query', 'admin']) {
            s.on(name, (ack?: (r: string) => void) => {
              handled.push(name)
              ack?.('ok')
            })
          }
        })
      },
      { logger: { level: 'debug', stream } },
    )
    const client = connect(opened.started.base, { transports: ['websocket'], reconnection: false })
    try {
      const refusal = (name: string) =>
        client
          .timeout(3000)
          .emitWithAck(name)
          .then(
            () => undefined,
            (error: ParleyError<string>) => error,
          )
      expect(await refusal('query')).toMatchObject({
        code: 'PARLEY_HANDLER_ERROR',
        message: 'refused by middleware',
      })
      // A refusal the application meant keeps its code and message.
      expect(await refusal('admin')).toMatchObject({ code: 'FORBIDDEN', message: 'admins only' })
      // Without a reply wanted, the same refusal comes as the client's `error` event.
      const errors: ParleyError<string>[] = []
      client.on('error', (error) => errors.push(error))
      client.emit('query')
      await until(() => errors.length === 1)
      expect(errors[0]).toMatchObject({ code: 'PARLEY_HANDLER_ERROR', message: 'refused by middleware' })
    } finally {
      client.disconnect()
    }
    expect(handled).toEqual([])
    expect(JSON.stringify(lines)).toContain('relation \\"users\\" does not exist')
    // Once per burst: the first at once, with its err; the second at close.
    const failures = () => lines.filter((l) => l.msg.startsWith('parley: event middleware failed'))
    expect(failures()).toHaveLength(1)
    expect(failures()[0]).toMatchObject({
      level: 50,
      event: 'query',
      err: { message: 'relation "users" does not exist' },
      count: 1,
    })
    await opened.started.app.close()
    opened.started = undefined
    expect(failures().map((l) => [l.event, l.count])).toEqual([
      ['query', 1],
      ['query', 1],
    ])
    // The refusal the application meant is no failure: logged at debug only.
    expect(lines.filter((l) => l.level >= 40 && l.event === 'admin')).toEqual([])
  })

  it('let the event through when one without next returns, and refuse it when one throws', async () => {
    const seen: string[] = []
    const got: string[] = []
    const { client } = await one((s) => {
      s.use(([event]) => {
        seen.push(event)
      })
      s.use(([event]) => {
        if (event === 'secret') throw new ParleyError('FORBIDDEN', 'not for you')
      })
      for (const name of ['a', 'b', 'secret']) {
        s.on(name, (ack?: (r: string) => void) => {
          got.push(name)
          ack?.(name)
        })
      }
    })
    await client.send(event(1, 'a', []), event(2, 'secret', [], 1), event(3, 'b', [], 2))
    expect(await client.next(answerTo(1))).toMatchObject({ code: 'FORBIDDEN', message: 'not for you' })
    expect(await client.next(answerTo(2))).toMatchObject({ type: PacketType.REPLY, args: ['b'] })
    expect(seen).toEqual(['a', 'secret', 'b'])
    expect(got).toEqual(['a', 'b'])
  })

  it('keep arrival order behind a slow middleware, and ignore a second next()', async () => {
    const got: number[] = []
    const { client } = await one((s) => {
      s.use((packet, next) => {
        const n = packet[1] as number
        // Earlier events wait longer: without the queue they would arrive last.
        setTimeout(
          () => {
            next()
            next(new Error('too late to refuse'))
          },
          20 - n * 4,
        )
      })
      s.on('n', (n: number) => got.push(n))
    })
    await client.send(...[1, 2, 3, 4].map((n) => event(n, 'n', [n])))
    await until(() => got.length === 4)
    expect(got).toEqual([1, 2, 3, 4])
    expect(client.inbox.filter(notice)).toEqual([])
  })

  it('refuse events past maxWaitingEvents with PARLEY_QUEUE_FULL, and deliver the rest in order', async () => {
    const got: number[] = []
    const releases: (() => void)[] = []
    const { client } = await one(
      (s) => {
        s.use((_packet, next) => {
          releases.push(() => next())
        })
        s.on('n', (n: number, ack?: (r: number) => void) => {
          got.push(n)
          ack?.(n)
        })
      },
      { maxWaitingEvents: 2 },
    )
    // One event in the middleware, two waiting, then two more that find no room.
    await client.send(...[1, 2, 3, 4, 5].map((n) => event(n, 'n', [n], n === 5 ? 9 : 0)))
    await until(() => client.inbox.some(answerTo(9)) && client.inbox.filter(notice).length === 1)
    expect(client.inbox.find(answerTo(9))).toMatchObject({
      type: PacketType.ERROR,
      code: 'PARLEY_QUEUE_FULL',
    })
    expect(client.inbox.find(notice)).toMatchObject({ code: 'PARLEY_QUEUE_FULL' })
    // The middleware catches up: the events it had taken arrive, once and in order.
    for (let i = 0; i < 3; i++) {
      await until(() => releases.length > i)
      releases[i]!()
    }
    await until(() => got.length === 3)
    expect(got).toEqual([1, 2, 3])
    // With room again, events are taken again.
    await client.send(event(6, 'n', [6]))
    await until(() => releases.length === 4)
    releases[3]!()
    await until(() => got.length === 4)
    expect(got).toEqual([1, 2, 3, 6])
  }, 30_000)

  it('drop the events still waiting when the session ends', async () => {
    const got: number[] = []
    let release: (() => void) | undefined
    const { socket, client } = await one((s) => {
      s.use((_packet, next) => {
        release = next
      })
      s.on('n', (n: number) => got.push(n))
    })
    await client.send(event(1, 'n', [1]), event(2, 'n', [2]))
    await until(() => release !== undefined)
    socket.disconnect()
    release!()
    await sleep(20)
    expect(got).toEqual([])
  })

  it.each(['websocket', 'sse', 'polling'] as const)(
    'run nothing more for a socket a middleware disconnected, though it let the event through (%s)',
    async (transport) => {
      const got: string[] = []
      opened.started = await startServer({}, (app) => {
        app.parley.on('connection', (s) => {
          s.use(([name], next) => {
            if (name === 'bye') s.disconnect()
            next()
          })
          // One without next lets the event through when it returns.
          s.use(([name]) => {
            if (name === 'leave') s.disconnect()
          })
          s.use(([name], next) => {
            got.push(`checked ${name}`)
            next()
          })
          for (const name of ['n', 'bye', 'leave']) s.on(name, () => got.push(`handled ${name}`))
        })
      })
      for (const last of ['bye', 'leave']) {
        const client = await rawConnect(transport, opened.started.base)
        opened.clients.push(client)
        // One batch: the event after the one that ends the session is not read either.
        await client.send(event(1, 'n', []), event(2, last, [], 1), event(3, 'n', []))
        expect(await client.next((p) => p.type === PacketType.CLOSE)).toMatchObject({
          reason: 'server disconnect',
        })
      }
      await sleep(20)
      expect(got).toEqual(['checked n', 'handled n', 'checked n', 'handled n'])
    },
  )
})

describe('a refusal whose message does not fit in maxPayload', () => {
  it('still answers the event with its code, nothing escapes, and the log says so', async () => {
    const long = 'x'.repeat(900)
    const got: unknown[] = []
    const lines: { level: number; msg: string; event?: string; code?: string; err?: { code?: string } }[] = []
    const stream = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line))
        done()
      },
    })
    const thrown = await unheard(async () => {
      opened.started = await startServer(
        { maxPayload: 512 },
        (app) => {
          app.parley.on('connection', (s) => {
            s.use((packet, next) => {
              if (packet[0] === 'next') next(new ParleyError('TOO_WORDY', long))
              else next()
            })
            s.use(async ([event]) => {
              if (event === 'reject') throw new ParleyError('TOO_WORDY', long)
            })
            s.on('ok', (ack: (r: string) => void) => ack('ok'))
          })
        },
        { logger: { level: 'warn', stream } },
      )
      const client = connect(opened.started.base, { transports: ['websocket'], reconnection: false })
      try {
        await new Promise<void>((resolve) => client.once('connect', () => resolve()))
        for (const name of ['next', 'reject']) {
          got.push(
            await client
              .timeout(3000)
              .emitWithAck(name)
              .catch((error: ParleyError<string>) => [error.code, error.message]),
          )
        }
        got.push(await client.timeout(3000).emitWithAck('ok'))
      } finally {
        client.disconnect()
      }
    })
    const refused = ['TOO_WORDY', 'refused: the message of the refusal does not fit in maxPayload']
    expect(got).toEqual([refused, refused, 'ok'])
    expect(thrown).toEqual([])
    // One line for the burst, at once, with the first refusal's event, code and why.
    const tooLong = lines.filter((l) => l.msg.startsWith('parley: event refusal too long for maxPayload'))
    expect(tooLong).toEqual([
      expect.objectContaining({
        level: 40,
        event: 'next',
        code: 'TOO_WORDY',
        err: expect.objectContaining({ code: 'PARLEY_PAYLOAD_TOO_LARGE' }),
      }),
    ])
    expect(tooLong[0]?.msg).toContain('for 1 event(s) since the last such line')
  })
})

describe('handler refusals', () => {
  it('send the code and message of an error with an application code, and hide the rest', async () => {
    const { client } = await one((s) => {
      s.on('coded', () => {
        throw new ParleyError('NOT_ALLOWED', 'you may not')
      })
      s.on('async', async () => {
        throw Object.assign(new Error('no such room'), { code: 'NO_SUCH_ROOM' })
      })
      s.on('bug', () => {
        throw new TypeError('x is undefined at line 3')
      })
      // What a package of Parley's rejects with (the Redis adapter's `ready()` with Redis away): not the app's.
      s.on('internal', async () => {
        throw Object.assign(new Error('Redis at redis.internal:6379 did not answer'), {
          code: 'PARLEY_REDIS_UNREACHABLE',
        })
      })
      // A code the client knows, thrown on purpose, is the application's to send.
      s.on('wire', () => {
        throw new ParleyError('PARLEY_VALIDATION_FAILED', 'room must be a string')
      })
    })
    await client.send(
      event(1, 'coded', [], 1),
      event(2, 'async', [], 2),
      event(3, 'bug', [], 3),
      event(4, 'internal', [], 4),
      event(5, 'wire', [], 5),
    )
    expect(await client.next(answerTo(1))).toMatchObject({ code: 'NOT_ALLOWED', message: 'you may not' })
    expect(await client.next(answerTo(2))).toMatchObject({ code: 'NO_SUCH_ROOM', message: 'no such room' })
    expect(await client.next(answerTo(3))).toMatchObject({
      code: 'PARLEY_HANDLER_ERROR',
      message: 'the handler failed',
    })
    expect(await client.next(answerTo(4))).toMatchObject({
      code: 'PARLEY_HANDLER_ERROR',
      message: 'the handler failed',
    })
    expect(await client.next(answerTo(5))).toMatchObject({
      code: 'PARLEY_VALIDATION_FAILED',
      message: 'room must be a string',
    })
  })
})

describe('what is no ordinary Error, given to next() or thrown by a handler', () => {
  it('refuses the event with what can be read of it, logs it, and nothing escapes', async () => {
    const lines: { msg: string }[] = []
    const stream = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line))
        done()
      },
    })
    const got: unknown[] = []
    const thrown = await unheard(async () => {
      // Events `next:<i>` are refused by the middleware with the i-th value; `throw:<i>` are let
      // through, to a handler that throws it.
      opened.started = await startServer(
        {},
        (app) => {
          app.parley.on('connection', (s) => {
            s.use(([name], next) => {
              const [how, i] = name.split(':')
              next(how === 'next' ? ODD_ERRORS[Number(i)]![1]() : undefined)
            })
            for (const i of ODD_ERRORS.keys()) {
              s.on(`throw:${i}`, () => {
                throw ODD_ERRORS[i]![1]()
              })
            }
          })
        },
        // At debug: the line of a coded refusal serializes its err too.
        { logger: { level: 'debug', stream } },
      )
      const client = connect(opened.started.base, { transports: ['websocket'], reconnection: false })
      try {
        for (const how of ['next', 'throw']) {
          for (const i of ODD_ERRORS.keys()) {
            const error = await client
              .timeout(3000)
              .emitWithAck(`${how}:${i}`)
              .then(
                () => undefined,
                (e: ParleyError<string>) => e,
              )
            got.push([how, error?.code, error?.message])
          }
        }
      } finally {
        client.disconnect()
      }
      await opened.started.app.close()
      opened.started = undefined
    })
    // An answer for each, never the client's PARLEY_ACK_TIMEOUT of an event left unanswered.
    expect(got).toEqual(
      ['next', 'throw'].flatMap((how) =>
        ODD_ERRORS.map(([, , code, message]) => [
          how,
          code ?? 'PARLEY_HANDLER_ERROR',
          message ?? (how === 'next' ? 'refused by middleware' : 'the handler failed'),
        ]),
      ),
    )
    expect(thrown).toEqual([])
    expect(lines.some((l) => l.msg.startsWith('parley: event middleware failed'))).toBe(true)
    expect(lines.some((l) => l.msg.startsWith('parley: event handler failed'))).toBe(true)
  })
})
