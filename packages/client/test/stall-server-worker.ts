// A Parley server in a thread of its own for stalled-timers.test.ts: it answers while the test's
// thread is blocked. Every write to a connection adds one to the shared counter (the 101 that
// answers an upgrade, then the OPEN that answers a HELLO), so that the blocked thread can tell,
// by Atomics.wait, that the answer it has not read yet is on its way. With `helloDelay`, the
// server's middleware holds every HELLO that long before its OPEN. GET /token answers after
// 300 ms.
import { parentPort, workerData } from 'node:worker_threads'
import parley from '@parley/server'
import Fastify from 'fastify'

const { writes, helloDelay } = workerData as { writes: Int32Array; helloDelay: number }

const app = Fastify()
await app.register(parley)
const server = (app as unknown as { parley: { use(fn: () => Promise<void>): void } }).parley
if (helloDelay) server.use(() => new Promise((resolve) => setTimeout(resolve, helloDelay)))
// A token for an `auth` function to fetch, 300 ms after it was asked for.
app.get('/token', () => new Promise((resolve) => setTimeout(() => resolve({ token: 'hi' }), 300)))
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
