// A WebSocket whose link went half-open (a laptop asleep, a NAT that forgot the flow: nothing
// comes back, nothing is closed) must not hold `app.close()`. The server sends its CLOSE and its
// close frame; the client never answers the frame. ws alone would wait 30 s for it, past a
// typical grace period between SIGTERM and SIGKILL; the server cuts it after the last words'
// wait (see closing-websockets.ts).
import { connect, type Socket } from '@parley/client'
import { afterEach, expect, it } from 'vitest'
import { startTcpProxy, type TcpProxy } from '../../../test/support/tcp-proxy.js'
import { closeApp, type Started, sleep, startServer, until } from './helpers.js'

let started: Started | undefined
let proxy: TcpProxy | undefined
let client: Socket | undefined
afterEach(async () => {
  client?.disconnect()
  await proxy?.close()
  await closeApp(started?.app)
  started = proxy = client = undefined
})

it('closes the app beside a WebSocket whose link went half-open', async () => {
  const server = await startServer({ pingInterval: 1000, pingTimeout: 1000 })
  const sockets: string[] = []
  server.app.parley.on('connection', (socket) => sockets.push(socket.id))
  started = server
  proxy = await startTcpProxy(Number(new URL(server.base).port))
  client = connect(`${proxy.url}/parley`, { transports: ['websocket'], reconnection: false })
  await until(() => client?.connected === true && sockets.length === 1, 5000)
  proxy.freeze()
  // A guard against a hang, not a measure of speed: ws's own wait is 30 s.
  const closed = server.app.close().then(() => true)
  expect(await Promise.race([closed, sleep(10_000).then(() => false)])).toBe(true)
  started = undefined
}, 20_000)
