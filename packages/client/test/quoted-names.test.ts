// An event whose name holds a quote, a backslash or a line break is named in the client's errors
// as the server names it in its own (`aboutEvent` of @parley/protocol: the name as a JSON
// string), so that the message reads one way, and on one line, wherever it was made. Real client
// against the real server.
import { aboutEvent, ErrorCode } from '@parley/protocol'
import { afterEach, expect, it } from 'vitest'
import { client, closeAll, next, parleyOf, type ServerSocket, startServer, thrown, until } from './helpers.js'

afterEach(closeAll)

/** A name each of whose odd characters a plain pair of quotes would leave ambiguous. */
const NAME = 'say "hi"\\\nthere'

it('names an event with quotes, a backslash or a line break as the server does', async () => {
  const got: unknown[] = []
  let serverSocket: ServerSocket | undefined
  const server = await startServer(
    (app) =>
      parleyOf(app).on('connection', (socket) => {
        serverSocket = socket
        // Never answers: the client's wait runs out.
        socket.on(NAME, (value: unknown, ack?: unknown) => {
          if (typeof ack !== 'function') got.push(value)
        })
      }),
    { pingInterval: 10_000, pingTimeout: 10_000 },
  )
  const socket = client(server.url, { transports: ['websocket'] })
  await next(socket, 'connect')
  await until(() => serverSocket !== undefined, 3000, 'the server socket')

  // The server's error for a value JSON cannot carry, and the client's, begin alike.
  const prefix = aboutEvent(NAME, '')
  const onServer = thrown(() => serverSocket?.emit(NAME as never, 1n as never))
  expect(onServer).toMatchObject({ code: ErrorCode.UNSERIALIZABLE })
  expect((onServer as Error).message.startsWith(prefix)).toBe(true)
  const onClient = thrown(() => socket.emit(NAME, 1n))
  expect(onClient).toMatchObject({ code: ErrorCode.UNSERIALIZABLE })
  expect((onClient as Error).message.startsWith(prefix)).toBe(true)
  expect((onClient as Error).message).not.toContain('\n')

  await expect(socket.timeout(200).emitWithAck(NAME, 'late')).rejects.toMatchObject({
    code: ErrorCode.ACK_TIMEOUT,
    message: aboutEvent(NAME, 'no reply within 200 ms'),
  })

  socket.emit(NAME, 'fine')
  await until(() => got.length > 0, 3000, 'the next emit')
  expect(got).toEqual(['fine'])
})
