// A stall of the server's own event loop (a long synchronous task, a major GC, a debugger's
// pause) past a deadline that a WebSocket's HELLO ends: a HELLO that arrived during the stall is
// read before that deadline's verdict, rather than losing to a timer Node runs first. Its
// handshake wait (handshakeTimeout), and the recovery window of the session it resumes. The
// server runs in this thread, which the test blocks; the client (a raw WebSocket,
// stall-hello-worker.ts) runs in a thread of its own, its HELLO held by the gate of
// stall-gate.ts until the stall has begun.
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { encodeText, PacketType } from '@parley/protocol'
import type { FastifyInstance } from 'fastify'
import { afterEach, expect, it } from 'vitest'
import { compiledScript } from '../../../test/support/compiled-script.js'
import { closeApp, startServer, until, within } from './helpers.js'
import { rawConnect } from './raw-client.js'
import { stallFromCheckPhase } from './stall.js'
import { HOLD } from './stall-gate.js'

/** The deadline under test: handshakeTimeout, or the recovery window. */
const DEADLINE_MS = 1000
/** The stall: past the deadline, which falls in it. */
const STALL_MS = 2000

const entry = fileURLToPath(new URL('./stall-hello-worker.ts', import.meta.url))

const closers: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

async function server(options: Record<string, unknown>): Promise<{ app: FastifyInstance; base: string }> {
  const started = await startServer({ pingInterval: 20_000, pingTimeout: 10_000, ...options })
  closers.push(() => closeApp(started.app))
  return started
}

interface Heard {
  packet?: number
  recovered?: boolean
  said?: string
  closed?: number
}

/**
 * The client's thread: a WebSocket to `base` that sends `hello` once the stall has begun.
 * `opened` resolves once it is open; `heard` is what it got back.
 */
async function helloThread(base: string, hello: string, gate: Int32Array) {
  const url = `${base.replace(/^http/, 'ws')}/ws?v=1`
  const worker = new Worker(await compiledScript(entry), { workerData: { url, hello, gate } })
  closers.push(async () => {
    const exited = new Promise((resolve) => worker.once('exit', resolve))
    worker.postMessage('close')
    await within(exited, 5000, 'the client thread to exit').catch(() => worker.terminate())
  })
  const heard: Heard[] = []
  const opened = new Promise<void>((resolve) =>
    worker.on('message', (message: Heard & { open?: true }) => {
      if (message.open) resolve()
      else heard.push(message)
    }),
  )
  worker.on('error', (error) => void heard.push({ said: `thread: ${error.message}` }))
  await within(opened, 10_000, 'the WebSocket to open')
  return heard
}

it("answers a HELLO that came while the server's thread stalled past handshakeTimeout", async () => {
  const { base } = await server({ handshakeTimeout: DEADLINE_MS })
  const gate = new Int32Array(new SharedArrayBuffer(8))
  Atomics.store(gate, 0, HOLD)
  const heard = await helloThread(base, encodeText({ type: PacketType.HELLO }), gate)
  // Open: its wait for the HELLO runs out during the stall, the HELLO arrives in it.
  expect(await within(stallFromCheckPhase(gate, HOLD, STALL_MS), 3000, 'the stall')).toBe(true)
  await until(() => heard.length > 0, 3000, 'the answer to the HELLO')
  expect(heard[0]).toEqual({ packet: PacketType.OPEN, recovered: false })
}, 22_000)

it("resumes a session whose resume came while the server's thread stalled past its recovery window", async () => {
  const { app, base } = await server({ recovery: { window: DEADLINE_MS } })
  const lost: string[] = []
  app.parley.on('connection', (socket) => {
    socket.on('transport', (now) => void (now === null && lost.push(socket.id)))
    socket.on('disconnect', (reason) => void lost.push(`disconnect: ${reason}`))
  })
  const first = await rawConnect('websocket', base)
  const gate = new Int32Array(new SharedArrayBuffer(8))
  Atomics.store(gate, 0, HOLD)
  const hello = encodeText({ type: PacketType.HELLO, sid: first.sid, ack: 0 })
  const heard = await helloThread(base, hello, gate)
  // Its transport lost, the session waits for a resume; the window runs out during the stall,
  // the resume arrives in it.
  first.close()
  await until(() => lost.length > 0, 3000, 'the session to lose its transport')
  expect(lost).toEqual([first.id])
  expect(await within(stallFromCheckPhase(gate, HOLD, STALL_MS), 3000, 'the stall')).toBe(true)
  await until(() => heard.length > 0, 3000, 'the answer to the resume')
  expect(heard[0]).toEqual({ packet: PacketType.OPEN, recovered: true })
  expect(lost).toEqual([first.id])
}, 22_000)
