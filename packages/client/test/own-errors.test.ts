// An application's own code can throw while the client reads what it sends: a `toJSON`, a
// getter, a Proxy's trap. A ParleyError thrown there is the application's refusal, made on
// purpose: it reaches the caller untouched, the same object, with its code, message and details.
// Any other error there means the value cannot be sent: PARLEY_UNSERIALIZABLE, named after the
// emit, the application's error as its cause. Real client against the real server, over each
// transport; nothing is sent, and the session goes on. So for the `auth` option: a ParleyError
// its function throws or rejects with, or that reading its value throws, reaches `connect_error`
// untouched, and the client refuses itself (no retry), as for any failure of its auth.
import { ErrorCode, ParleyError } from '@parley/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import { unheard } from '../../../test/support/unheard.js'
import {
  client,
  closeAll,
  next,
  parleyOf,
  pricesSession,
  STEADY_HEARTBEAT,
  startServer,
  thrown,
  until,
} from './helpers.js'

afterEach(closeAll)

/** The application's own refusal, with a code and details of its own. */
const refusal = () => new ParleyError('OUT_OF_STOCK', 'no stock left', { details: { sku: 'A-1' } })

/** Values whose reading throws `error`: from a toJSON, a getter, a Proxy's trap, nested. */
const throwing = (error: unknown): [what: string, make: () => unknown][] => [
  [
    'a toJSON',
    () => ({
      toJSON() {
        throw error
      },
    }),
  ],
  [
    'a getter',
    () => ({
      get price() {
        throw error
      },
    }),
  ],
  [
    "a Proxy's trap",
    () =>
      new Proxy(
        {},
        {
          ownKeys() {
            throw error
          },
        },
      ),
  ],
  [
    'a getter deep in a list',
    () => [
      1,
      {
        list: [
          {
            get price() {
              throw error
            },
          },
        ],
      },
    ],
  ],
]

/** What each kind of emit of `value` throws or rejects with. */
async function emitted(socket: ReturnType<typeof client>, make: () => unknown): Promise<unknown[]> {
  return [
    thrown(() => socket.emit('price', make())),
    thrown(() => socket.volatile.emit('price', make())),
    thrown(() => socket.timeout(1000).emit('price', make(), () => {})),
    await socket.emitWithAck('price', make()).catch((error: unknown) => error),
  ]
}

describe.each(['websocket', 'sse', 'polling'] as const)('over %s', (transport) => {
  it("gives every kind of emit the application's own ParleyError untouched, and wraps any other error", async () => {
    const { socket, got, sessions } = await pricesSession(transport)
    const seen = await unheard(async () => {
      const own = refusal()
      for (const [what, make] of throwing(own)) {
        const errors = await emitted(socket, make)
        for (const error of errors) expect(error, what).toBe(own)
      }
      expect(own).toMatchObject({ code: 'OUT_OF_STOCK', message: 'no stock left', details: { sku: 'A-1' } })
      const plain = new Error('not loaded yet')
      for (const [what, make] of throwing(plain)) {
        for (const error of await emitted(socket, make)) {
          expect(error, what).toBeInstanceOf(ParleyError)
          expect(error, what).toMatchObject({
            code: ErrorCode.UNSERIALIZABLE,
            message: 'event "price": not JSON (not loaded yet)',
          })
          expect((error as Error).cause, what).toBe(plain)
        }
      }
      socket.emit('price', 'fine')
      await until(() => got.length > 0, 3000, 'the next emit')
    })
    expect(seen).toEqual([])
    expect(got).toEqual(['fine'])
    expect(sessions()).toBe(1)
    expect(socket.connected).toBe(true)
  })

  it("gives connect_error the application's own ParleyError from its auth untouched, and tries no more", async () => {
    let handshakes = 0
    const server = await startServer(
      (app) => parleyOf(app).use(async () => void handshakes++),
      STEADY_HEARTBEAT,
    )
    const own = refusal()
    /** Auth options whose reading throws `error`: its function, sync or async, or its value. */
    const auths = (error: unknown): [what: string, auth: unknown][] => [
      [
        'a function that throws',
        () => {
          throw error
        },
      ],
      ['a function that rejects', async () => Promise.reject(error)],
      ...throwing(error).map(([what, make]): [string, unknown] => [`a value with ${what}`, make()]),
      ...throwing(error).map(([what, make]): [string, unknown] => [`a function returning ${what}`, make]),
    ]
    const errors: unknown[] = []
    const seen = await unheard(async () => {
      for (const [what, auth] of auths(own)) {
        const socket = client(server.url, { transports: [transport], auth: auth as never })
        const [error, willRetry] = await next<[unknown, boolean]>(socket, 'connect_error')
        errors.push([what, error === own, willRetry])
        await until(() => !socket.active, 2000, 'the client to stop')
      }
      // Any other error: the client's refusal of its own, with the error as its cause.
      const plain = new Error('not loaded yet')
      for (const [what, auth] of auths(plain)) {
        const socket = client(server.url, { transports: [transport], auth: auth as never })
        const [error, willRetry] = await next<[ParleyError<string>, boolean]>(socket, 'connect_error')
        const code = what.startsWith('a function th') ? ErrorCode.REFUSED : ErrorCode.UNSERIALIZABLE
        expect([error.code, error.details?.refused, willRetry], what).toEqual([code, true, false])
        await until(() => !socket.active, 2000, 'the client to stop')
      }
    })
    expect(seen).toEqual([])
    expect(errors).toEqual(auths(own).map(([what]) => [what, true, false]))
    // As the application made it: nothing added to its details, its message its own.
    expect(own).toMatchObject({ code: 'OUT_OF_STOCK', message: 'no stock left' })
    expect(own.details).toEqual({ sku: 'A-1' })
    // No HELLO went.
    expect(handshakes).toBe(0)
  })

  it("throws the application's own ParleyError from a reply untouched, and the next reply goes", async () => {
    const { socket, peer } = await pricesSession(transport)
    const own = refusal()
    const plain = new Error('not loaded yet')
    const errors: unknown[] = []
    socket.on('quote', (ack: (reply: unknown) => void) => {
      for (const [, make] of throwing(own)) errors.push(thrown(() => ack(make())))
      for (const [, make] of throwing(plain)) errors.push(thrown(() => ack(make())))
      ack('fine')
    })
    const serverSocket = await peer()
    let reply: unknown
    const seen = await unheard(async () => {
      reply = await serverSocket.emitWithAck('quote')
    })
    expect(seen).toEqual([])
    expect(reply).toBe('fine')
    const count = throwing(own).length
    expect(errors.slice(0, count)).toEqual(Array(count).fill(own))
    for (const error of errors.slice(0, count)) expect(error).toBe(own)
    for (const error of errors.slice(count)) {
      expect(error).toMatchObject({
        code: ErrorCode.UNSERIALIZABLE,
        message: 'reply to "quote": not JSON (not loaded yet)',
        cause: plain,
      })
    }
    expect(socket.connected).toBe(true)
  })
})
