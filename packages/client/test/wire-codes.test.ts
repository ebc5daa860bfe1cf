// Every error code a real server puts in an ERROR packet has the one form of codes on the wire
// (`isWireCode` of @parley/protocol: 1 to 64 of A-Z 0-9 _), the rule the client's decoder holds
// an ERROR to: Parley's own codes, and an application's, which the server sends only in that
// form (else PARLEY_HANDLER_ERROR or PARLEY_REFUSED). So the client takes each of them, whichever
// way the server sends it: a handshake middleware's refusal (an unnumbered ERROR on a WebSocket,
// an HTTP body on SSE and polling), a handler's error answering a request, an event middleware's
// notice; and refuses no packet of the server's. Real client against the real server.
import { ErrorCode, ParleyError } from '@parley/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import { unheard } from '../../../test/support/unheard.js'
import { client, closeAll, next, parleyOf, type ServerSocket, startServer, until } from './helpers.js'

afterEach(closeAll)

/** The longest code an application may send: 64 characters. */
const LONGEST = `APP_${'X'.repeat(60)}`

/** Codes an application may throw that no code on the wire has: the server sends its own instead. */
const NOT_ON_THE_WIRE = ['rate_limited', 'AccessDenied', 'APP-FAILED', `${LONGEST}Y`]

/** The part of the server's socket this file uses beside the helpers' (`socket.use`). */
type WithMiddleware = ServerSocket & {
  use(fn: (event: [string, ...unknown[]]) => void | Promise<void>): void
}

describe.each(['websocket', 'sse', 'polling'] as const)('over %s', (transport) => {
  it("gives the application a handshake middleware's code, up to 64 characters, and Parley's for any other", async () => {
    let refuseWith = LONGEST
    const server = await startServer((app) =>
      parleyOf(app).use(async () => {
        throw new ParleyError(refuseWith as never, 'not today')
      }),
    )
    const got: unknown[] = []
    for (const code of [LONGEST, ...NOT_ON_THE_WIRE]) {
      refuseWith = code
      const socket = client(server.url, { transports: [transport], reconnection: false })
      const [error] = await next<[ParleyError<string>]>(socket, 'connect_error')
      got.push([error.code, error.message])
      socket.disconnect()
    }
    expect(got).toEqual([
      [LONGEST, 'not today'],
      ...NOT_ON_THE_WIRE.map(() => [ErrorCode.REFUSED, 'refused by middleware']),
    ])
  })

  it("takes every ERROR the server sends: a handler's code, an event middleware's notice, Parley's own", async () => {
    const server = await startServer((app) =>
      parleyOf(app).on('connection', (socket) => {
        ;(socket as WithMiddleware).use(([event]) => {
          if (event === 'notice') throw new ParleyError(LONGEST as never, 'refused here')
        })
        socket.on('ask', async (code: string, ack: (reply: unknown) => void) => {
          if (code) throw new ParleyError(code as never, 'failed here')
          ack('fine')
        })
      }),
    )
    const socket = client(server.url, { transports: [transport] })
    await next(socket, 'connect')
    const errors: unknown[] = []
    socket.on('error', (error: ParleyError<string>) => errors.push([error.code, error.message]))
    const answers: unknown[] = []
    const thrown = await unheard(async () => {
      for (const code of [LONGEST, ...NOT_ON_THE_WIRE, ''])
        answers.push(
          await socket.emitWithAck('ask', code).then(
            (reply) => reply,
            (error: ParleyError<string>) => [error.code, error.message],
          ),
        )
      // No handler, and no reply wanted: Parley's own codes, each in an ERROR.
      answers.push(
        await socket.emitWithAck('nobody').catch((error: ParleyError<string>) => [error.code, error.message]),
      )
      socket.emit('notice')
      await until(() => errors.length > 0, 3000, 'the notice')
    })
    expect(thrown).toEqual([])
    expect(answers).toEqual([
      [LONGEST, 'failed here'],
      ...NOT_ON_THE_WIRE.map(() => [ErrorCode.HANDLER_ERROR, 'the handler failed']),
      'fine',
      [ErrorCode.NO_HANDLER, 'no handler for "nobody"'],
    ])
    // The notice, and no packet of the server's refused (PARLEY_INVALID_PACKET).
    expect(errors).toEqual([[LONGEST, 'refused here']])
    expect(socket.connected).toBe(true)
  })
})
