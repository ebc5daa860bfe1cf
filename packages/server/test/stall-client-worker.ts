// A Parley client in a thread of its own for the tests of a stalled server thread
// (stalled-server.test.ts): it reads and answers while the test's thread, which runs the server,
// is blocked. Everything it sends goes through the gate of stall-gate.ts. It posts `connected`
// (its session id), what it says that a live session should not (`said`), and the answer to each
// `echo` the test asks of it; it answers the server's `ask` with what it was given (a reply held by
// the gate as any send); `close` disconnects it and ends the thread.
import { parentPort, workerData } from 'node:worker_threads'
import { connect } from '@parley/client'
import WebSocket from 'ws'
import { HOLD, HOLD_BOUND_MS, MUTE, SENT, STATE } from './stall-gate.js'

const { url, transport, gate } = workerData as {
  url: string
  transport: 'websocket' | 'sse' | 'polling'
  gate: Int32Array
}

/** Whether a send may go: held until the server's stall began, never once muted. */
function mayGo(): boolean {
  if (Atomics.load(gate, STATE) === HOLD) Atomics.wait(gate, STATE, HOLD, HOLD_BOUND_MS)
  if (Atomics.load(gate, STATE) === MUTE) return false
  Atomics.add(gate, SENT, 1)
  return true
}

/** `ws`, its sends through the gate (the client gives `send` its data alone). */
class GatedWebSocket extends WebSocket {
  override send(data: Parameters<WebSocket['send']>[0]): void {
    if (mayGo()) super.send(data)
  }
}

const gatedFetch: typeof fetch = (input, init) => (mayGo() ? fetch(input, init) : new Promise(() => {}))

const post = (message: unknown) => parentPort?.postMessage(message)

const socket = connect(url, {
  transports: [transport],
  reconnection: false,
  WebSocket: GatedWebSocket,
  fetch: gatedFetch,
})
socket.on('transport_error', (name, error) => post({ said: `${name}: ${error.message}` }))
socket.on('connect_error', (error) => post({ said: `${error.code}: ${error.message}` }))
socket.on('disconnect', (reason) => post({ said: `disconnect: ${reason}` }))
socket.once('connect', () => post({ connected: socket.id }))
socket.on('ask', (value: unknown, ack?: (answer: unknown) => void) => ack?.(value))
parentPort?.on('message', (message: { echo: number } | 'close') => {
  if (message === 'close') {
    socket.disconnect()
    parentPort?.close()
    return
  }
  socket
    .timeout(3000)
    .emitWithAck('echo', message.echo)
    .then(
      (answer: unknown) => post({ echoed: answer }),
      (error: Error) => post({ said: `echo: ${error.message}` }),
    )
})
