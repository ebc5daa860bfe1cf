// A POST over a bare TCP connection from a thread of its own, for stalled-server.test.ts: it
// sends `first` (its head and the start of its body), then, once the gate of stall-gate.ts says
// the server's thread has stalled, the rest of the body, which arrives during the stall. It posts
// the status of the answer (0 when the connection closed without one).
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

let answer = ''
let told = false
const tell = (status: number) => {
  if (told) return
  told = true
  parentPort?.postMessage({ status })
  socket.destroy()
}
const socket = connect(port, '127.0.0.1', () => {
  // Once `first` is the kernel's: held (bounded) until the stall began.
  socket.write(first, () => {
    awaitStall(gate, HOLD_BOUND_MS)
    Atomics.add(gate, SENT, 1)
    socket.write(rest)
  })
})
socket.setEncoding('latin1')
socket.on('data', (text: string) => {
  answer += text
  const status = /^HTTP\/1\.1 (\d{3})/.exec(answer)
  if (status?.[1]) tell(Number(status[1]))
})
socket.on('close', () => tell(0))
socket.on('error', () => tell(0))
