// A process of its own for left-handshake.test.ts: a handshake that never answers, which the
// client leaves (`connecting`: disconnect() during a WebSocket upgrade; `upgraded`: disconnect()
// once a WebSocket's HELLO is in, on an upgrade accepted by a server that then says nothing;
// `sse`, `polling`: disconnect() once the HELLO's POST is in; `probe`: an upgrade probe given up
// when the server ends the session; `paused`: disconnect() while a connect with reconnection off
// waits to try a slow server middleware again; `auth`: disconnect() while the application's `auth`
// function has not settled, so no HELLO went). It prints "left" once the client let go and everything of its own is
// closed; then nothing should keep the process (beyond the short grace a HELLO that went gets).
import { createHash } from 'node:crypto'
import net from 'node:net'
import { WS_SUBPROTOCOL } from '@parley/protocol'
import parley from '@parley/server'
import Fastify from 'fastify'
import { WebSocket } from 'ws'
import { connect } from '../src/index.js'

const mode = process.argv[2]
// A third of it is the wait for an upgrade: 20 s, far longer than the test waits for the exit.
const connectTimeout = 60_000

if (mode === 'connecting' || mode === 'sse' || mode === 'polling') {
  // Accepts TCP, reads what comes (the upgrade request, or the POST with the HELLO) and says
  // nothing.
  const silent = net.createServer((s) => {
    // Its own part let go, not closed: the client's end of each connection is what is tested
    // (fetch may open another one once a request on the first was aborted).
    s.unref()
    s.once('data', () => {
      socket.disconnect()
      silent.unref()
      console.log('left')
    })
  })
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  const { port } = silent.address() as net.AddressInfo
  const socket = connect(`http://127.0.0.1:${port}/parley`, {
    transports: [mode === 'connecting' ? 'websocket' : mode],
    // Given: the client's own lookup of `ws` would start from where this file was compiled to.
    WebSocket,
    connectTimeout,
    reconnection: false,
  })
} else if (mode === 'upgraded') {
  // Accepts the upgrade (101, the Parley subprotocol), reads the HELLO and says nothing: no OPEN,
  // and no answer to the client's closing handshake either.
  const silent = net.createServer((s) => {
    s.unref()
    s.once('data', (request) => {
      const key = /^sec-websocket-key: *(\S+)/im.exec(request.toString())?.[1]
      const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64')
      s.write(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          `Sec-WebSocket-Accept: ${accept}\r\nSec-WebSocket-Protocol: ${WS_SUBPROTOCOL}\r\n\r\n`,
      )
      s.once('data', () => {
        socket.disconnect()
        silent.unref()
        console.log('left')
      })
    })
  })
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  const { port } = silent.address() as net.AddressInfo
  const socket = connect(`http://127.0.0.1:${port}/parley`, {
    transports: ['websocket'],
    WebSocket,
    connectTimeout,
    reconnection: false,
  })
} else if (mode === 'paused') {
  // A server whose middleware is slower than its handshakeTimeout, every time: with reconnection
  // off, the client pauses before it tries again, and is let go during that pause. The pause is
  // the only timer of its length here (no jitter), which tells the child it has begun.
  const pause = 45_000
  const app = Fastify()
  await app.register(parley, { handshakeTimeout: 100 })
  app.parley.use(() => new Promise((resolve) => setTimeout(resolve, 300)))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as net.AddressInfo
  const plain = globalThis.setTimeout
  globalThis.setTimeout = ((...args: Parameters<typeof plain>) => {
    const timer = plain(...args)
    if (args[1] === pause) {
      globalThis.setTimeout = plain
      queueMicrotask(async () => {
        socket.disconnect()
        await app.close()
        console.log('left')
      })
    }
    return timer
  }) as typeof plain
  const socket = connect(`http://127.0.0.1:${port}/parley`, {
    transports: ['polling'],
    connectTimeout,
    reconnection: false,
    reconnectionDelay: pause,
    reconnectionDelayMax: pause,
    randomization: 0,
  })
} else if (mode === 'auth') {
  // A real server, never reached: the auth never settles (a token fetch left hanging), and the
  // application lets the client go while it waits.
  const app = Fastify()
  await app.register(parley)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as net.AddressInfo
  const socket = connect(`http://127.0.0.1:${port}/parley`, {
    transports: ['websocket'],
    WebSocket,
    connectTimeout,
    reconnection: false,
    auth: () => {
      queueMicrotask(async () => {
        socket.disconnect()
        await app.close()
        console.log('left')
      })
      return new Promise<never>(() => {})
    },
  })
} else {
  const held: net.Socket[] = []
  const app = Fastify()
  await app.register(parley, { pingInterval: 1000, pingTimeout: 1000 })
  await app.listen({ port: 0, host: '127.0.0.1' })
  // Every upgrade is held, unanswered: the WebSocket probe waits.
  app.server.removeAllListeners('upgrade')
  app.server.on('upgrade', (_req, s: net.Socket) => {
    held.push(s)
    // The server ends the session while the probe waits: the client gives the probe up.
    for (const server of (
      app as unknown as { parley: { sockets: Map<string, { disconnect(): void }> } }
    ).parley.sockets.values())
      server.disconnect()
  })
  const { port } = app.server.address() as net.AddressInfo
  const socket = connect(`http://127.0.0.1:${port}/parley`, {
    transports: ['sse', 'websocket'],
    WebSocket,
    connectTimeout,
    upgradeDelay: 50,
    reconnection: false,
  })
  socket.on('disconnect', async () => {
    await app.close()
    for (const s of held) s.destroy()
    console.log('left')
  })
}
