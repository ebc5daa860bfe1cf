// A stall of the server's own event loop (a long synchronous task, a major GC, a CPU-starved
// container, a debugger's pause) longer than pingTimeout, begun right after a PING went out: the
// client's PONG arrives during the stall. Node runs the heartbeat's check, run out meanwhile,
// before it reads that PONG, unless the check waits for it (see TimerQueue): the session must
// live, whether the PONG came on an open connection or, over SSE and polling behind a proxy that
// opens a connection per request, on one opened during the stall. The server runs in this
// thread, which the test blocks from the check phase of the PING's turn; the client (a real Parley
// client, stall-client-worker.ts) runs in a thread of its own, which answers meanwhile, held back
// by the gate of stall-gate.ts until the stall has begun. The same holds for a POST body whose
// rest came during such a stall (stall-post-worker.ts sends it): it is read, not given up.
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { encodeText, PacketType } from '@parley/protocol'
import type { ServerSocket } from '@parley/server'
import { afterEach, expect, it } from 'vitest'
import { compiledScript } from '../../../test/support/compiled-script.js'
import { closeApp, type Started, startServer, until, within } from './helpers.js'
import { rawConnect } from './raw-client.js'
import { head } from './raw-http.js'
import { stallFromCheckPhase, watchWrites } from './stall.js'
import { HOLD, MUTE } from './stall-gate.js'

const PING_INTERVAL = 2000
const PING_TIMEOUT = 1000
/**
 * The stall: past pingTimeout, so that the check of the PING falls in it, half a second before
 * its end; short of pingInterval, so that the PING after that check comes when it is due, after
 * the stall (a longer one is LONG_STALL's).
 */
const STALL_MS = 1500

/** The heartbeat of a server, and the stall the test makes. */
interface Beat {
  pingInterval: number
  pingTimeout: number
  stallMs: number
}

const BEAT: Beat = { pingInterval: PING_INTERVAL, pingTimeout: PING_TIMEOUT, stallMs: STALL_MS }

/**
 * A stall past twice pingTimeout and short of pingInterval: the PING after the check that fell in
 * it is due 2 s after the stall, and the client's window (pingInterval + pingTimeout from the PING
 * before) ends a second after that. Counted from the check, late by the stall, that PING would
 * come a second after the window.
 */
const LONG_STALL: Beat = { pingInterval: 5000, pingTimeout: 1000, stallMs: 3000 }

const PING = encodeText({ type: PacketType.PING })
const entry = fileURLToPath(new URL('./stall-client-worker.ts', import.meta.url))
const postEntry = fileURLToPath(new URL('./stall-post-worker.ts', import.meta.url))

const closers: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

/**
 * A server whose sockets answer `echo`, and which records its sockets and what it says that a
 * live session should not (a transport lost, a disconnect); with `connectionPerRequest`, it closes
 * every HTTP connection after its response. `stallAfterNextPing(state)` stalls it (see
 * `stallFromCheckPhase`) as the next PING is written; `pinged()` counts the PINGs written.
 */
async function stallingServer(gate: Int32Array, connectionPerRequest = false, beat = BEAT) {
  const sockets: ServerSocket[] = []
  const said: string[] = []
  let onPing: (() => void) | undefined
  let pings = 0
  const started: Started = await startServer(
    { pingInterval: beat.pingInterval, pingTimeout: beat.pingTimeout, recovery: false },
    (app) => {
      app.parley.on('connection', (socket) => {
        sockets.push(socket)
        socket.on('transport', (now, before) => void said.push(`transport: ${before} to ${now}`))
        socket.on('disconnect', (reason) => void said.push(`disconnect: ${reason}`))
        socket.on('echo', (value, ack) => ack?.(value))
      })
      // As behind a proxy that opens a connection to the node for each request (nginx without
      // `keepalive`): the client's PONG comes on a connection opened during the stall.
      if (connectionPerRequest)
        app.server.prependListener('request', (_request, response) => {
          response.shouldKeepAlive = false
        })
      watchWrites(app.server, (text) => {
        if (!text.includes(PING)) return
        pings++
        if (onPing) {
          const then = onPing
          onPing = undefined
          then()
        }
      })
    },
  )
  closers.push(() => closeApp(started.app))
  const stallAfterNextPing = (state: typeof HOLD | typeof MUTE) =>
    new Promise<boolean>((resolve) => {
      onPing = () => resolve(stallFromCheckPhase(gate, state, beat.stallMs))
    })
  return { started, sockets, said, stallAfterNextPing, pinged: () => pings }
}

/**
 * The client in its own thread, connected over `transport` alone; `echo` asks it to emit `echo`
 * and waits for the answer; `said` is what it says that a live session should not.
 */
async function clientThread(url: string, transport: 'websocket' | 'sse' | 'polling', gate: Int32Array) {
  const worker = new Worker(await compiledScript(entry), { workerData: { url, transport, gate } })
  closers.push(async () => {
    const exited = new Promise((resolve) => worker.once('exit', resolve))
    worker.postMessage('close')
    await within(exited, 5000, 'the client thread to exit').catch(() => worker.terminate())
  })
  const said: string[] = []
  const echoed: unknown[] = []
  let id: string | undefined
  worker.on('message', (message: { connected?: string; said?: string; echoed?: unknown }) => {
    if (message.connected !== undefined) id = message.connected
    if (message.said !== undefined) said.push(message.said)
    if ('echoed' in message) echoed.push(message.echoed)
  })
  worker.on('error', (error) => void said.push(`thread: ${error.message}`))
  await until(() => id !== undefined || said.length > 0, 10_000, 'the client to connect')
  const echo = async (value: string) => {
    worker.postMessage({ echo: value })
    await until(() => echoed.includes(value) || said.length > 0, 4000, `the answer to echo ${value}`)
  }
  return { id, said, echo }
}

it.each([
  ['websocket', false],
  ['sse', false],
  ['polling', false],
  ['sse', true],
  ['polling', true],
] as const)(
  "keeps a session on %s whose PONG came while the server's thread stalled past pingTimeout (a connection per request: %s)",
  async (transport, connectionPerRequest) => {
    const gate = new Int32Array(new SharedArrayBuffer(8))
    const server = await stallingServer(gate, connectionPerRequest)
    const client = await clientThread(server.started.base, transport, gate)
    await client.echo('before')
    const stall = server.stallAfterNextPing(HOLD)
    // The first PING comes pingInterval after the attach; the client answers it during the stall.
    expect(await within(stall, PING_INTERVAL + STALL_MS + 2000, 'the PING and the stall after it')).toBe(true)
    await client.echo('after')
    expect({ server: server.said, client: client.said }).toEqual({ server: [], client: [] })
    expect(server.sockets.map((socket) => [socket.id, socket.transport])).toEqual([[client.id, transport]])
  },
  // The waits' bounds (the client's start 10 s, two echoes 4 s each, the PING and the stall 5.5 s)
  // with 2 s to spare.
  26_000,
)

it("sends the PING after a stall of the server's thread past twice pingTimeout when it was due, within the client's wait", async () => {
  const gate = new Int32Array(new SharedArrayBuffer(8))
  const server = await stallingServer(gate, false, LONG_STALL)
  const client = await clientThread(server.started.base, 'websocket', gate)
  await client.echo('before')
  const stall = server.stallAfterNextPing(HOLD)
  const bound = LONG_STALL.pingInterval + LONG_STALL.stallMs + 2000
  expect(await within(stall, bound, 'the PING and the stall after it')).toBe(true)
  const pings = server.pinged()
  // The next PING is due 2 s after the stall; the client gives up a second later without it.
  await until(() => server.pinged() > pings || client.said.length > 0, 4000, 'the next PING')
  await client.echo('after')
  expect({ server: server.said, client: client.said }).toEqual({ server: [], client: [] })
}, 30_000)

it("still ends a session whose client sent nothing through the server's stall with ping timeout", async () => {
  const gate = new Int32Array(new SharedArrayBuffer(8))
  const server = await stallingServer(gate)
  const client = await clientThread(server.started.base, 'websocket', gate)
  await client.echo('before')
  const stall = server.stallAfterNextPing(MUTE)
  expect(await within(stall, PING_INTERVAL + STALL_MS + 2000, 'the PING and the stall after it')).toBe(false)
  await until(() => server.said.length > 0, 3000, 'the session to end')
  expect(server.said).toEqual(['disconnect: ping timeout'])
}, 22_000)

it.each([
  ['polling', 'poll'],
  ['sse', 'sse'],
] as const)(
  "reads to its end a POST body over %s whose rest came while the server's thread stalled past pingTimeout",
  async (transport, segment) => {
    const gate = new Int32Array(new SharedArrayBuffer(8))
    // No PING within the test: pingTimeout bounds the body alone.
    let onBody: (() => void) | undefined
    const started = await startServer({ pingInterval: 20_000, pingTimeout: PING_TIMEOUT }, (app) => {
      app.addHook('onRequest', async (request) => {
        if (request.method === 'POST' && onBody) onBody()
      })
    })
    closers.push(() => closeApp(started.app))
    const client = await rawConnect(transport, started.base)
    closers.push(async () => client.close())
    const stalled = new Promise<boolean>((resolve) => {
      onBody = () => {
        onBody = undefined
        resolve(stallFromCheckPhase(gate, HOLD, STALL_MS))
      }
    })
    const body = '[3]\n[3]\n'
    const first =
      head('POST', `/parley/${segment}?v=1&sid=${client.sid}`, {
        'Content-Type': 'text/plain',
        'Content-Length': String(body.length),
      }) + body.slice(0, 4)
    const { port } = started.app.server.address() as { port: number }
    const worker = new Worker(await compiledScript(postEntry), {
      workerData: { port, first, rest: body.slice(4), gate },
    })
    closers.push(() => worker.terminate())
    const answered = new Promise<number>((resolve) =>
      worker.once('message', (m: { status: number }) => resolve(m.status)),
    )
    await within(stalled, 5000, 'the POST and the stall after it')
    expect(await within(answered, 4000, 'the answer to the POST')).toBe(204)
  },
  // The waits' bounds (the POST and the stall 5 s, its answer 4 s) with 2 s to spare, and the start.
  16_000,
)
