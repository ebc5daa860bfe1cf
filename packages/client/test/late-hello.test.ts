// A HELLO that reached the server after its `handshakeTimeout` (a slow link, a loaded client) is
// answered ERROR PARLEY_HANDSHAKE_TIMEOUT on the WebSocket: the server waited too long for this
// connection, it did not turn the client away. The client goes on as after any transport that
// failed to open, and connects; it does not give up for good as it does when refused.
import { ErrorCode, type ParleyError } from '@parley/protocol'
import { afterEach, expect, it } from 'vitest'
import WebSocket from 'ws'
import type { WebSocketConstructor } from '../src/transports/websocket.js'
import { client, closeAll, closeClients, next, startServer } from './helpers.js'

afterEach(async () => {
  closeClients()
  await closeAll()
})

/** The server's wait for a fresh WebSocket's HELLO, in ms. */
const HANDSHAKE_TIMEOUT = 200

/** A WebSocket whose first frame leaves late, the first time one is made: the HELLO arrives late. */
function lateFirstHello(by: number) {
  let made = 0
  return class LateHello extends WebSocket {
    constructor(url: string, protocols: string) {
      super(url, protocols)
      if (made++ !== 0) return
      const send = this.send.bind(this) as (data: string | Uint8Array) => void
      let first = true
      this.send = ((data: string | Uint8Array) => {
        if (!first) return send(data)
        first = false
        setTimeout(() => {
          if (this.readyState === WebSocket.OPEN) send(data)
        }, by)
      }) as WebSocket['send']
    }
  }
}

it('connects after the server answered a late HELLO PARLEY_HANDSHAKE_TIMEOUT', async () => {
  const server = await startServer(() => {}, { handshakeTimeout: HANDSHAKE_TIMEOUT })
  const socket = client(server.url, {
    transports: ['websocket'],
    connectTimeout: 5000,
    WebSocket: lateFirstHello(HANDSHAKE_TIMEOUT * 4) as unknown as WebSocketConstructor,
  })
  const failures: string[] = []
  socket.on('transport_error', (transport, error) => failures.push(`${transport} ${error.code}`))
  socket.on('connect_error', (error: ParleyError<string>, willRetry: boolean) =>
    failures.push(`connect_error ${error.code} ${willRetry}`),
  )
  await next(socket, 'connect', 10_000)
  expect(socket.transport).toBe('websocket')
  // Told as a transport that failed, then tried again (the only transport), never given up on.
  expect(failures).toEqual([
    `websocket ${ErrorCode.HANDSHAKE_TIMEOUT}`,
    `connect_error ${ErrorCode.HANDSHAKE_TIMEOUT} true`,
  ])
})
