// A BigInt is not JSON: an emit whose arguments hold one throws PARLEY_UNSERIALIZABLE at the call,
// on either end, with a message that names the event and says why; nothing is sent, no sequence
// number is used, and the session goes on as if the emit had not been made.
import { ErrorCode } from '@parley/protocol'
import type { ServerSocket } from '@parley/server'
import { afterEach, describe, expect, it } from 'vitest'
import { unheard } from '../../../test/support/unheard.js'
import { client, closeAll, next, startServer, until } from './helpers.js'

afterEach(closeAll)

/** What the client's emits of `price` throw: the event named, and the engine's reason. */
const fromClient = expect.objectContaining({
  code: ErrorCode.UNSERIALIZABLE,
  message: expect.stringMatching(/^event "price": not JSON \(.*BigInt.*\)$/),
})

/** What the server's emits of `price` throw. */
const fromServer = expect.objectContaining({
  code: ErrorCode.UNSERIALIZABLE,
  message: expect.stringMatching(/^event "price": payload cannot be serialised to JSON \(.*BigInt.*\)$/),
})

describe.each(['websocket', 'sse', 'polling'] as const)('over %s, a BigInt in an emit', (transport) => {
  it("is refused at the client's emit, naming the event, and the session goes on", async () => {
    const got: unknown[] = []
    let sessions = 0
    const server = await startServer((app) => {
      app.parley.on('connection', (socket) => {
        sessions++
        socket.on('price', (value: unknown) => got.push(value))
      })
    })
    const socket = client(server.url, { transports: [transport] })
    await next(socket, 'connect')
    const seen = await unheard(async () => {
      expect(() => socket.emit('price', { amount: 10n })).toThrow(fromClient)
      expect(() => socket.volatile.emit('price', 10n)).toThrow(fromClient)
      expect(() => socket.timeout(1000).emit('price', [1, 2n], () => {})).toThrow(fromClient)
      await expect(socket.emitWithAck('price', { amount: 10n })).rejects.toEqual(fromClient)
      socket.emit('price', { amount: '10' })
      await until(() => got.length > 0, 2000, 'the next emit')
    })
    expect(seen).toEqual([])
    expect(got).toEqual([{ amount: '10' }])
    expect(sessions).toBe(1)
    expect(socket.connected).toBe(true)
  })

  it("is refused at the server's emit and broadcast, naming the event, and the session goes on", async () => {
    const sockets: ServerSocket[] = []
    const server = await startServer((app) => {
      app.parley.on('connection', (socket) => {
        sockets.push(socket)
        socket.join('quotes')
      })
    })
    const socket = client(server.url, { transports: [transport] })
    const got: unknown[] = []
    socket.on('price', (value: unknown) => got.push(value))
    await next(socket, 'connect')
    await until(() => sockets.length === 1, 2000, 'the server socket')
    const io = server.app.parley
    const serverSocket = sockets[0]!
    const seen = await unheard(async () => {
      expect(() => serverSocket.emit('price', { amount: 10n })).toThrow(fromServer)
      expect(() => serverSocket.volatile.emit('price', 10n)).toThrow(fromServer)
      expect(() => serverSocket.timeout(1000).emit('price', 10n, () => {})).toThrow(fromServer)
      await expect(serverSocket.emitWithAck('price', 10n)).rejects.toEqual(fromServer)
      expect(() => io.emit('price', 10n)).toThrow(fromServer)
      expect(() => io.to('quotes').emit('price', { amount: 10n })).toThrow(fromServer)
      await expect(io.to('quotes').timeout(1000).emitWithAck('price', 10n)).rejects.toEqual(fromServer)
      serverSocket.emit('price', { amount: '10' })
      await until(() => got.length > 0, 2000, 'the next emit')
    })
    expect(seen).toEqual([])
    // Nothing else came: the refused emits used no sequence number, or the client would have
    // waited for a gap.
    expect(got).toEqual([{ amount: '10' }])
    expect(serverSocket.connected).toBe(true)
    expect(socket.connected).toBe(true)
  })
})
