// A WebSocket to a Parley endpoint from a thread of its own, for the tests of a stalled server
// thread: it opens, posts `open`, then, once the gate of stall-gate.ts says the server's thread
// has stalled, sends `hello`, which arrives during the stall. It posts the type of each packet
// it gets back (`packet`, with `recovered` for an OPEN) and the close code (`closed`).
import { parentPort, workerData } from 'node:worker_threads'
import { decodeText, PacketType, WS_SUBPROTOCOL } from '@parley/protocol'
import WebSocket from 'ws'
import { awaitStall } from './stall.js'
import { HOLD_BOUND_MS, SENT } from './stall-gate.js'

const { url, hello, gate } = workerData as { url: string; hello: string; gate: Int32Array }

const ws = new WebSocket(url, WS_SUBPROTOCOL)
ws.on('error', () => {})
ws.once('open', () => {
  parentPort?.postMessage({ open: true })
  awaitStall(gate, HOLD_BOUND_MS)
  Atomics.add(gate, SENT, 1)
  ws.send(hello)
})
ws.on('message', (data: Buffer) => {
  const decoded = decodeText(data.toString(), { maxPayload: 1e8 })
  if (!decoded.ok) return
  const packet = decoded.packet
  parentPort?.postMessage({
    packet: packet.type,
    ...(packet.type === PacketType.OPEN ? { recovered: packet.recovered } : {}),
    ...(packet.type === PacketType.ERROR || packet.type === PacketType.CLOSE ? { said: packet.message } : {}),
  })
})
ws.once('close', (code: number) => parentPort?.postMessage({ closed: code }))
parentPort?.on('message', () => {
  ws.terminate()
  parentPort?.close()
})
