// A request the client must refuse (its listener threw, or none listens) is answered with an
// ERROR, which is numbered and kept like any emit. With the queue full (the failing listener
// filled it), that answer cannot be kept: it is dropped (the server's wait times out), rather
// than PARLEY_QUEUE_FULL being thrown into the transport's code (in Node over WebSocket, an
// uncaught exception; over SSE, the stream lost; over polling, the end of the GET loop).
import { ErrorCode } from '@parley/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import { unheard } from '../../../test/support/unheard.js'
import { client, closeAll, next, parleyOf, startServer, until } from './helpers.js'

afterEach(closeAll)

describe.each(['websocket', 'sse', 'polling'] as const)('over %s', (transport) => {
  it('a refusal that finds the queue full is dropped: nothing thrown but the listener’s own error, the session goes on', async () => {
    const server = await startServer((app) => {
      parleyOf(app).on('connection', (socket) => {
        socket.on('ready', () => {
          // Answered by nobody: the server's wait ends with its own timeout.
          socket.emitWithAck('ask').catch(() => {})
          socket.emit('later')
        })
      })
    })
    const c = client(server.url, { transports: [transport], maxQueuedMessages: 1 })
    const boom = new Error('boom')
    let later = 0
    c.on('ask', () => {
      // The queue's one place is taken until the server's ACK (by `ready`, else by this emit):
      // the refusal finds it full.
      try {
        c.emit('filler')
      } catch {}
      throw boom
    })
    c.on('later', () => later++)
    // Over SSE the throw broke off the stream's reading: the transport was lost, and resumed.
    const lost: unknown[] = []
    c.on('transport_error', (_, error) => lost.push(error.code))
    await next(c, 'connect')
    const left = await unheard(async () => {
      c.emit('ready')
      await until(() => later === 1, 5000, 'the event after the request')
    })
    expect(left).toEqual([boom])
    expect(lost).toEqual([])
    expect(c.connected).toBe(true)
  })
})

// Only a full queue is expected there. Anything else the refusal cannot be sent for is the
// application's to hear, as an `error` with its code: here the answer to a request nobody listens
// to, `no handler for "<name>"`, which quotes the name, outgrows the server's maxPayload that the
// request itself fit in.
describe.each(['websocket', 'sse', 'polling'] as const)('over %s', (transport) => {
  it('a refusal that cannot be sent for another reason is heard as `error`, the session goes on', async () => {
    const name = 'x'.repeat(230)
    const server = await startServer(
      (app) => {
        parleyOf(app).on('connection', (socket) => {
          socket.on('ready', () => {
            // Answered by nobody: the server's wait ends with its own timeout.
            socket.emitWithAck(name).catch(() => {})
            socket.emit('later')
          })
        })
      },
      { maxPayload: 256 },
    )
    const c = client(server.url, { transports: [transport] })
    const errors: unknown[] = []
    let later = 0
    c.on('error', (error) => errors.push([error.code, error.message]))
    c.on('later', () => later++)
    await next(c, 'connect')
    c.emit('ready')
    await until(() => later === 1, 5000, 'the event after the request')
    // The message says which request the answer was for.
    expect(errors).toEqual([
      [
        ErrorCode.PAYLOAD_TOO_LARGE,
        expect.stringMatching(new RegExp(`^reply to "${name}": \\d+ bytes > maxPayload 256$`)),
      ],
    ])
    expect(c.connected).toBe(true)
  })
})
