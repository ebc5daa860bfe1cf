// A Parley server in a thread of its own for the tests of a stalled client thread
// (stall-thread.ts): it answers while the test's thread is blocked. Every write to a connection
// adds one to the shared counter `writes` (the 101 that answers an upgrade, the OPEN that answers
// a HELLO, a PING), so that the blocked thread can tell, by Atomics.wait, that the answer it has
// not read yet is on its way; every `transport` event of a socket adds one to `moves`. With
// `helloDelay`, the server's middleware holds every HELLO that long before its OPEN, adding one
// to `asked` as it comes;
// `streamDelay` holds every GET of an event stream (the stream's first bytes) that long, adding
// one to `asked` as it comes; `pingInterval` and `pingTimeout` set its heartbeat. Every
// session's end is posted to the parent thread, with its `disconnect` reason. GET /token
// answers after 300 ms, and adds one to `asked` when it comes. A socket answers `echo` with what
// it got, and `hold` (ms) by blocking this thread that long first: a server busy with a long
// synchronous task, which sends nothing meanwhile.
import { parentPort, workerData } from 'node:worker_threads'
import parley from '@parley/server'
import Fastify from 'fastify'

const { writes, moves, asked, helloDelay, streamDelay, pingInterval, pingTimeout } = workerData as {
  writes: Int32Array
  moves: Int32Array
  asked: Int32Array
  helloDelay?: number
  streamDelay?: number
  pingInterval?: number
  pingTimeout?: number
}

type Ack = ((...args: unknown[]) => void) | undefined
interface ServerSocket {
  on(event: 'transport', listener: () => void): void
  on(event: 'disconnect', listener: (reason: string) => void): void
  on(event: string, listener: (value: unknown, ack: Ack) => void): void
}

const app = Fastify()
// Before the plugin, so that its routes have it too.
if (streamDelay)
  app.addHook('onRequest', async (request) => {
    if (request.method === 'GET' && request.url.includes('/sse?')) {
      Atomics.add(asked, 0, 1)
      await new Promise((resolve) => setTimeout(resolve, streamDelay))
    }
  })
await app.register(parley, { pingInterval, pingTimeout })
const server = (
  app as unknown as {
    parley: {
      use(fn: () => Promise<void>): void
      on(event: 'connection', listener: (socket: ServerSocket) => void): void
    }
  }
).parley
if (helloDelay)
  server.use(() => {
    Atomics.add(asked, 0, 1)
    return new Promise((resolve) => setTimeout(resolve, helloDelay))
  })
server.on('connection', (socket) => {
  socket.on('transport', () => void Atomics.add(moves, 0, 1))
  socket.on('disconnect', (reason) => parentPort?.postMessage({ end: reason }))
  socket.on('echo', (value, ack) => ack?.(value))
  socket.on('hold', (ms, ack) => {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms as number)
    ack?.()
  })
})
// A token for an `auth` function to fetch, 300 ms after it was asked for (counted in `asked`).
app.get('/token', () => {
  Atomics.add(asked, 0, 1)
  return new Promise((resolve) => setTimeout(() => resolve({ token: 'hi' }), 300))
})
app.server.on('connection', (socket) => {
  const write = socket.write
  socket.write = ((...args: Parameters<typeof write>) => {
    const done = write.apply(socket, args)
    Atomics.add(writes, 0, 1)
    Atomics.notify(writes, 0)
    return done
  }) as typeof write
})
await app.listen({ port: 0, host: '127.0.0.1' })
const { port } = app.server.address() as { port: number }
parentPort?.postMessage(port)
parentPort?.once('message', () => void app.close().then(() => parentPort?.close()))
