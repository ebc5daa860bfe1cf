// A stall of the server's own event loop (a long synchronous task, a major GC, a debugger's
// pause) past GAP_GRACE_MS, the grace a gap in a client's numbers has to be filled before its
// transport is let go: the POST that fills it, arrived during the stall, is read before the
// grace's verdict, and the session keeps its transport, rather than losing it to a timer Node
// runs first (its client made to resume, and to send the same packets again, for nothing). The
// server runs in this thread, which the test blocks; the POST comes over a bare TCP connection
// from a thread of its own (stall-post-worker.ts), its head's end held by the gate of
// stall-gate.ts until the stall has begun.
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { type EventPacket, encodeText, PacketType } from '@parley/protocol'
import { afterEach, expect, it } from 'vitest'
import { compiledScript } from '../../../test/support/compiled-script.js'
import { GAP_GRACE_MS } from '../src/session.js'
import { closeApp, startServer, until, within } from './helpers.js'
import { rawConnect } from './raw-client.js'
import { head } from './raw-http.js'
import { stallFromCheckPhase } from './stall.js'
import { HOLD } from './stall-gate.js'

/** The stall: past GAP_GRACE_MS, whose verdict falls in it. */
const STALL_MS = GAP_GRACE_MS + 1000

const entry = fileURLToPath(new URL('./stall-post-worker.ts', import.meta.url))

const closers: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

const event = (seq: number, name: string): EventPacket => ({
  type: PacketType.EVENT,
  seq,
  name,
  args: [],
  ackId: 0,
})

it.each([
  ['polling', 'poll'],
  ['sse', 'sse'],
] as const)(
  "keeps the transport of a session over %s whose gap was filled by a POST that came while the server's thread stalled past its grace",
  async (transport, segment) => {
    // No PING within the test: the gap's grace is the only deadline.
    let onAnswered: (() => void) | undefined
    const started = await startServer({ pingInterval: 20_000, pingTimeout: 10_000 }, (app) => {
      app.addHook('onResponse', async (request) => {
        if (request.method === 'POST' && onAnswered) onAnswered()
      })
    })
    closers.push(() => closeApp(started.app))
    const { app, base } = started
    const heard: string[] = []
    const said: string[] = []
    app.parley.on('connection', (socket) => {
      for (const name of ['one', 'two']) socket.on(name, () => void heard.push(name))
      socket.on('transport', (now, before) => void said.push(`transport: ${before} to ${now}`))
      socket.on('disconnect', (reason) => void said.push(`disconnect: ${reason}`))
    })
    let connections = 0
    app.server.on('connection', () => void connections++)
    const client = await rawConnect(transport, base)
    closers.push(async () => client.close())
    const gate = new Int32Array(new SharedArrayBuffer(8))
    Atomics.store(gate, 0, HOLD)
    // The POST that fills the gap (its client's packets sent again, from the first one): its
    // connection open before the stall, the last line break of its head sent once it has begun.
    const body = `${encodeText(event(1, 'one'))}\n${encodeText(event(2, 'two'))}\n`
    const post = head('POST', `/parley/${segment}?v=1&sid=${client.sid}`, {
      'Content-Type': 'text/plain',
      'Content-Length': String(Buffer.byteLength(body)),
    })
    const { port } = app.server.address() as { port: number }
    const before = connections
    const worker = new Worker(await compiledScript(entry), {
      workerData: { port, first: post.slice(0, -2), rest: post.slice(-2) + body, gate },
    })
    closers.push(() => worker.terminate())
    const answered = new Promise<number>((resolve) =>
      worker.once('message', (m: { status: number }) => resolve(m.status)),
    )
    await until(() => connections > before, 5000, 'the POST to connect')
    // A packet past a gap (1 is missing): dropped, and the grace runs from then. The stall
    // begins as its POST is answered, so that the grace ends in it however slow the machine.
    const stalled = new Promise<boolean>((resolve) => {
      onAnswered = () => {
        onAnswered = undefined
        resolve(stallFromCheckPhase(gate, HOLD, STALL_MS))
      }
    })
    expect(await client.send(event(2, 'two'))).toBe(204)
    expect(await within(stalled, 4000, 'the stall')).toBe(true)
    expect(await within(answered, 4000, 'the answer to the POST')).toBe(204)
    await until(() => heard.length === 2 || said.length > 0, 3000, 'both events')
    expect({ heard, said }).toEqual({ heard: ['one', 'two'], said: [] })
  },
  // The waits' bounds (the connect 5 s, the stall 4 s, the answer 4 s, the events 3 s) with 2 s
  // to spare, and the start.
  22_000,
)
