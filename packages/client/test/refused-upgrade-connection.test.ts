// A refused WebSocket upgrade in Node: the client lets go of its end of the connection, whatever
// the server does with its own. The stand-in answers a coded refusal and then neither reads nor
// closes the connection, which the real server never does.
import type { ClientRequest } from 'node:http'
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net'
import { ErrorCode, type ParleyError } from '@parley/protocol'
import { afterEach, expect, it } from 'vitest'
import WebSocket from 'ws'
import type { WebSocketConstructor } from '../src/transports/websocket.js'
import { client, closeClients, next, until } from './helpers.js'

let server: Server | undefined
const held: Socket[] = []
afterEach(async () => {
  closeClients()
  for (const socket of held.splice(0)) socket.destroy()
  await new Promise((resolve) => server?.close(resolve))
  server = undefined
})

it("lets go of its end of a refused upgrade's connection", async () => {
  const body = '{"code":"PARLEY_SERVER_SHUTTING_DOWN","message":"closing"}'
  server = createServer({ allowHalfOpen: true }, (socket) => {
    held.push(socket)
    socket.once('data', () => {
      socket.pause()
      socket.write(
        `HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      )
    })
  })
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  // ws hands the answer over with the request it came on; that request's socket is the client's end.
  const ends: Socket[] = []
  class Recording extends WebSocket {
    constructor(url: string, protocols: string) {
      super(url, protocols)
      this.on('unexpected-response', (request: ClientRequest) => {
        if (request.socket) ends.push(request.socket)
      })
    }
  }
  const socket = client(`http://127.0.0.1:${port}`, {
    transports: ['websocket'],
    reconnection: false,
    WebSocket: Recording as unknown as WebSocketConstructor,
  })
  const [error] = await next<[ParleyError<string>]>(socket, 'connect_error', 6000)
  expect(error.code).toBe(ErrorCode.SERVER_SHUTTING_DOWN)
  expect(ends.length).toBeGreaterThan(0)
  await until(() => ends.every((end) => end.destroyed), 2000, "the client's ends closing")
})
