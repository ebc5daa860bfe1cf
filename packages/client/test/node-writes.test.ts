// In Node, what the application sends in one tick leaves in one write of the TCP socket.
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { utf8Length } from '../src/codec.js'
import { client, closeAll, next, parleyOf, type ServerSocket, startServer, until } from './helpers.js'

afterEach(closeAll)

/** The `ws` WebSockets a client makes, kept so that the test can watch their sockets. */
function recordingWebSocket() {
  const made: WebSocket[] = []
  class Recording extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols)
      made.push(this)
    }
  }
  return { made, Recording }
}

interface WatchedSocket {
  _write(...args: unknown[]): void
  _writev(...args: unknown[]): void
}

/** Counts the writes that reach the socket's handle (each one a system call). */
function countWrites(ws: WebSocket): () => number {
  const socket = (ws as unknown as { _socket: WatchedSocket })._socket
  let writes = 0
  const write = socket._write.bind(socket)
  const writev = socket._writev.bind(socket)
  socket._write = (...args) => {
    writes++
    write(...args)
  }
  socket._writev = (...args) => {
    writes++
    writev(...args)
  }
  return () => writes
}

describe('the Node client over WebSocket', () => {
  it('sends a burst of emits from one tick in one write, and the server gets them all in order', async () => {
    const received: number[] = []
    const server = await startServer(
      (app) => {
        parleyOf(app).on('connection', (socket: ServerSocket) => {
          socket.on('n', (n: number) => received.push(n))
        })
        // No heartbeat during the test: no PONG to count among the writes.
      },
      { pingInterval: 60_000, pingTimeout: 60_000 },
    )
    const { made, Recording } = recordingWebSocket()
    const socket = client(server.url, { transports: ['websocket'], WebSocket: Recording })
    await next(socket, 'connect')
    const writes = countWrites(made[0]!)
    for (let n = 0; n < 50; n++) socket.emit('n', n)
    await until(() => received.length === 50, 3000, 'all 50 emits')
    expect(received).toEqual([...Array(50).keys()])
    // One write for the whole burst (uncorked, the first emit's frame goes alone and the rest
    // follow in a second write at least).
    expect(writes()).toBe(1)
  })

  it('counts UTF-8 bytes as the platform encodes them', () => {
    for (const text of ['', 'abc', 'é', '€', '😀', 'a😀b€', '\ud800', 'x\udc00y']) {
      expect(utf8Length(text), JSON.stringify(text)).toBe(new TextEncoder().encode(text).length)
    }
  })
})
