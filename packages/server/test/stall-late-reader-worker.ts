// A client on a bare TCP connection from a thread of its own, for the tests of a stalled server
// thread, that reads nothing until told to, as a busy process would not: what the server sends
// waits in the client's system meanwhile. It sends `first` at once and, once the gate of
// stall-gate.ts says the server's thread has stalled, `rest` and its end, which arrive during
// the stall.
// On `read` it reads what the connection holds, and posts the answer's status (0 for none) and
// the first error it met (a reset throws away what was not read yet, the answer included).
import { connect } from 'node:net'
import { parentPort, workerData } from 'node:worker_threads'
import { awaitStall } from './stall.js'
import { HOLD_BOUND_MS, SENT } from './stall-gate.js'

const { port, first, rest, gate } = workerData as {
  port: number
  first: string
  rest: string
  gate: Int32Array
}

const received: Buffer[] = []
let error: string | undefined
// With `onread`, pausing the socket stops reading from the system itself (not only the stream's
// events): nothing of the answer is taken off the connection before `read`.
const socket = connect({
  port,
  host: '127.0.0.1',
  allowHalfOpen: true,
  onread: {
    buffer: Buffer.alloc(64 * 1024),
    callback: (size, buffer) => {
      received.push(Buffer.from(buffer.subarray(0, size)))
      return true
    },
  },
})
socket.pause()
socket.on('error', (err: NodeJS.ErrnoException) => {
  error ??= err.code
})
const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
socket.once('connect', () => {
  socket.write(first, () => {
    awaitStall(gate, HOLD_BOUND_MS)
    Atomics.add(gate, SENT, 1)
    // And its end: it has nothing more to send.
    socket.end(rest)
  })
})
parentPort?.once('message', async () => {
  socket.resume()
  await closed
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(Buffer.concat(received).toString('latin1'))?.[1] ?? 0)
  parentPort?.postMessage({ status, error })
})
