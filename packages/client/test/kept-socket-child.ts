// A process of its own for kept-socket.test.ts, run with --expose-gc: a client connects over
// WebSocket to a real server, then disconnect(); the application keeps the socket (for a later
// connect(), say). Once the WebSocket has closed, nothing of the client should hold it: the
// process prints whether the garbage collector could take it.
import parley from '@parley/server'
import Fastify from 'fastify'
import { WebSocket } from 'ws'
import { connect } from '../src/index.js'

const gc = (globalThis as { gc?: () => void }).gc
if (!gc) throw new Error('run with --expose-gc')
const pause = () => new Promise((resolve) => setTimeout(resolve, 10))

const app = Fastify()
await app.register(parley)
await app.listen({ port: 0, host: '127.0.0.1' })
const { port } = app.server.address() as { port: number }

/** The WebSocket the client made, weakly; `closed` once its closing handshake is done. */
let made: WeakRef<WebSocket> | undefined
let closed = false
class Watched extends WebSocket {
  constructor(url: string, protocols?: string | string[]) {
    super(url, protocols)
    made = new WeakRef(this)
    this.on('close', () => {
      closed = true
    })
  }
}

const socket = connect(`http://127.0.0.1:${port}/parley`, {
  transports: ['websocket'],
  WebSocket: Watched,
  reconnection: false,
})
await new Promise((resolve) => socket.once('connect', () => resolve(undefined)))
socket.disconnect()
for (let i = 0; i < 500 && !closed; i++) await pause()
// A few rounds: what the closed WebSocket's last callbacks held is let go over a few ticks.
for (let i = 0; i < 50 && made?.deref(); i++) {
  await pause()
  gc()
}
console.log(JSON.stringify({ closed, collected: !made?.deref(), active: socket.active }))
await app.close()
