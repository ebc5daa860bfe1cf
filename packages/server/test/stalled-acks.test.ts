// A reply the client sent in time, read only after a stall of the server's thread (a long
// synchronous task, a major GC) longer than the question's timeout: Node runs the timeout, run
// out meanwhile, before it reads the reply, unless the timeout's verdict waits for it (see
// InputFirstAckTable, and the broadcast's timer in broadcast.ts). The server runs in this thread,
// which the test blocks from the check phase of the turn that wrote the question; the client (a
// real Parley client, stall-client-worker.ts) runs in a thread of its own and replies meanwhile,
// held back by the gate of stall-gate.ts until the stall has begun.
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { ErrorCode, ParleyError } from '@parley/protocol'
import type { ServerSocket } from '@parley/server'
import { afterEach, expect, it } from 'vitest'
import { compiledScript } from '../../../test/support/compiled-script.js'
import { closeApp, type Started, startServer, until, within } from './helpers.js'
import { stallFromCheckPhase, watchWrites } from './stall.js'
import { HOLD, MUTE } from './stall-gate.js'

/** The questions' timeout: the stall runs a second past it. */
const ASK_TIMEOUT = 500
const STALL_MS = 1500
/** The event the client answers (see stall-client-worker.ts): a name no other packet carries. */
const ASK = 'ask'

const entry = fileURLToPath(new URL('./stall-client-worker.ts', import.meta.url))

const closers: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

/**
 * A server whose sockets answer `echo` and are recorded; `stallOnAsk(state)` stalls it (see
 * `stallFromCheckPhase`) as the next `ask` is written to a client.
 */
async function stallingServer(gate: Int32Array) {
  const sockets: ServerSocket[] = []
  let onAsk: (() => void) | undefined
  // No PING within the test: the questions' timeout alone runs out in the stall.
  const started: Started = await startServer({ pingInterval: 20_000, pingTimeout: 10_000 }, (app) => {
    app.parley.on('connection', (socket) => {
      sockets.push(socket)
      socket.on('echo', (value, ack) => ack?.(value))
    })
    watchWrites(app.server, (text) => {
      if (onAsk && text.includes(`"${ASK}"`)) {
        const then = onAsk
        onAsk = undefined
        then()
      }
    })
  })
  closers.push(() => closeApp(started.app))
  const stallOnAsk = (state: typeof HOLD | typeof MUTE) =>
    new Promise<boolean>((resolve) => {
      onAsk = () => resolve(stallFromCheckPhase(gate, state, STALL_MS))
    })
  return { started, sockets, stallOnAsk }
}

/** The client in its own thread, connected over `transport` alone, once it answered an echo. */
async function clientThread(url: string, transport: 'websocket' | 'sse' | 'polling', gate: Int32Array) {
  const worker = new Worker(await compiledScript(entry), { workerData: { url, transport, gate } })
  closers.push(async () => {
    const exited = new Promise((resolve) => worker.once('exit', resolve))
    worker.postMessage('close')
    await within(exited, 5000, 'the client thread to exit').catch(() => worker.terminate())
  })
  const said: string[] = []
  let connected = false
  let echoed = false
  worker.on('message', (message: { connected?: string; said?: string; echoed?: unknown }) => {
    if (message.connected !== undefined) connected = true
    if (message.said !== undefined) said.push(message.said)
    if ('echoed' in message) echoed = true
  })
  worker.on('error', (error) => void said.push(`thread: ${error.message}`))
  await until(() => connected || said.length > 0, 10_000, 'the client to connect')
  worker.postMessage({ echo: 'before' })
  await until(() => echoed || said.length > 0, 4000, 'the answer to an echo')
  expect(said).toEqual([])
  return { said }
}

/** What a question's promise ended with: its answer, or its error's code and message. */
function outcome(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (answer) => ({ answer }),
    (error: unknown) =>
      error instanceof ParleyError ? { code: error.code, message: error.message } : { error: String(error) },
  )
}

const TRANSPORTS = ['websocket', 'sse', 'polling'] as const

it.each(TRANSPORTS)(
  "takes a reply over %s that came while the server's thread stalled past socket.timeout(ms)",
  async (transport) => {
    const gate = new Int32Array(new SharedArrayBuffer(8))
    const server = await stallingServer(gate)
    const client = await clientThread(server.started.base, transport, gate)
    const socket = server.sockets[0] as ServerSocket
    const stall = server.stallOnAsk(HOLD)
    const asked = outcome(socket.timeout(ASK_TIMEOUT).emitWithAck(ASK, 'in time'))
    expect(await within(stall, 5000, 'the question and the stall after it')).toBe(true)
    expect(await within(asked, 3000, 'the question to settle')).toEqual({ answer: 'in time' })
    expect(client.said).toEqual([])
  },
  // The waits' bounds (the start 10 s and an echo 4 s, the stall 5 s, the answer 3 s), 2 s spare.
  26_000,
)

it.each(TRANSPORTS)(
  "counts a broadcast's reply over %s that came while the server's thread stalled past its timeout(ms)",
  async (transport) => {
    const gate = new Int32Array(new SharedArrayBuffer(8))
    const server = await stallingServer(gate)
    const client = await clientThread(server.started.base, transport, gate)
    const stall = server.stallOnAsk(HOLD)
    const asked = outcome(server.started.app.parley.timeout(ASK_TIMEOUT).emitWithAck(ASK, 'in time'))
    expect(await within(stall, 5000, 'the broadcast and the stall after it')).toBe(true)
    expect(await within(asked, 3000, 'the broadcast to settle')).toEqual({ answer: ['in time'] })
    expect(client.said).toEqual([])
  },
  26_000,
)

it("still times out a question and a broadcast nobody answered through the server's stall", async () => {
  const gate = new Int32Array(new SharedArrayBuffer(8))
  const server = await stallingServer(gate)
  await clientThread(server.started.base, 'websocket', gate)
  const socket = server.sockets[0] as ServerSocket
  const stall = server.stallOnAsk(MUTE)
  const asked = outcome(socket.timeout(ASK_TIMEOUT).emitWithAck(ASK, 'too late'))
  const broadcast = outcome(server.started.app.parley.timeout(ASK_TIMEOUT).emitWithAck(ASK, 'too late'))
  expect(await within(stall, 5000, 'the question and the stall after it')).toBe(false)
  expect(await within(asked, 3000, 'the question to time out')).toEqual({
    code: ErrorCode.ACK_TIMEOUT,
    message: `no reply within ${ASK_TIMEOUT} ms`,
  })
  expect(await within(broadcast, 3000, 'the broadcast to time out')).toEqual({
    code: ErrorCode.ACK_TIMEOUT,
    message: `1 socket(s) did not reply within ${ASK_TIMEOUT} ms: 1 timed out`,
  })
}, 29_000)
