// A stall of the server's own event loop (a long synchronous task, a major GC, a debugger's
// pause) past the time the last words of an ended HTTP session are kept for its client's next
// GET (pingInterval + pingTimeout), or past the close's wait for the GET of a client that was
// about to send one: a GET that arrived during the stall is read before they are forgotten, and
// gets the session's CLOSE, not PARLEY_UNKNOWN_SESSION or the closing server's 503. The server runs in this
// thread, which the test blocks; the GET comes over a bare TCP connection from a thread of its
// own (stall-post-worker.ts), its end held by the gate of stall-gate.ts until the stall has begun.
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { afterEach, expect, it } from 'vitest'
import { compiledScript } from '../../../test/support/compiled-script.js'
import { closeApp, startServer, until, within } from './helpers.js'
import { rawConnect } from './raw-client.js'
import { head } from './raw-http.js'
import { stallFromCheckPhase } from './stall.js'
import { HOLD } from './stall-gate.js'

const PING_INTERVAL = 1000
const PING_TIMEOUT = 500
/** The stall: past pingInterval + pingTimeout, how long the last words are kept. */
const STALL_MS = 2500

const entry = fileURLToPath(new URL('./stall-post-worker.ts', import.meta.url))

const closers: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

it("gives the CLOSE of an ended polling session to a GET that came while the server's thread stalled past its keeping", async () => {
  const started = await startServer({ pingInterval: PING_INTERVAL, pingTimeout: PING_TIMEOUT })
  closers.push(() => closeApp(started.app))
  const { app, base } = started
  let connections = 0
  app.server.on('connection', () => void connections++)
  // A client between two GETs: none held when its session ends, whose CLOSE waits for the next.
  const client = await rawConnect('polling', base, {}, { firstGetAfter: new Promise(() => {}) })
  closers.push(async () => client.close())
  const socket = [...app.parley.sockets.values()][0]
  expect(socket?.id).toBe(client.id)
  const gate = new Int32Array(new SharedArrayBuffer(8))
  Atomics.store(gate, 0, HOLD)
  const get = head('GET', `/parley/poll?v=1&sid=${client.sid}`)
  const { port } = app.server.address() as { port: number }
  const before = connections
  // Its GET but the head's last line break, sent at once; that, once the stall has begun.
  const worker = new Worker(await compiledScript(entry), {
    workerData: { port, first: get.slice(0, -2), rest: get.slice(-2), gate },
  })
  closers.push(() => worker.terminate())
  const answered = new Promise<number>((resolve) =>
    worker.once('message', (m: { status: number }) => resolve(m.status)),
  )
  await until(() => connections > before, 5000, 'the GET to connect')
  socket?.disconnect()
  expect(await within(stallFromCheckPhase(gate, HOLD, STALL_MS), 4000, 'the stall')).toBe(true)
  expect(await within(answered, 4000, 'the answer to the GET')).toBe(200)
}, 22_000)

it("gives the CLOSE 'server shutdown' to a first GET that came while the closing server's thread stalled past its wait for it", async () => {
  const started = await startServer({})
  let closing: Promise<unknown> | undefined
  closers.push(async () => {
    await closing
    await closeApp(started.app)
  })
  const { app, base } = started
  let connections = 0
  app.server.on('connection', () => void connections++)
  const script = await compiledScript(entry)
  // A session opened by its handshake POST alone: its client is about to send its first GET,
  // which the close waits for (a second for a client never measured), then forgets its CLOSE.
  const client = await rawConnect('polling', base, {}, { firstGetAfter: new Promise(() => {}) })
  closers.push(async () => client.close())
  const socket = [...app.parley.sockets.values()][0]
  const gate = new Int32Array(new SharedArrayBuffer(8))
  Atomics.store(gate, 0, HOLD)
  const get = head('GET', `/parley/poll?v=1&sid=${client.sid}`)
  const { port } = app.server.address() as { port: number }
  const before = connections
  const worker = new Worker(script, {
    workerData: { port, first: get.slice(0, -2), rest: get.slice(-2), gate },
  })
  closers.push(() => worker.terminate())
  const answered = new Promise<number>((resolve) =>
    worker.once('message', (m: { status: number }) => resolve(m.status)),
  )
  await until(() => connections > before, 5000, 'the GET to connect')
  // The stall begins as the close ends the session, its wait for the GET set.
  const stalled = new Promise<boolean>((resolve) =>
    socket?.once('disconnect', () => resolve(stallFromCheckPhase(gate, HOLD, STALL_MS))),
  )
  closing = app.close()
  expect(await within(stalled, 4000, 'the close and the stall')).toBe(true)
  expect(await within(answered, 4000, 'the answer to the GET')).toBe(200)
  await within(closing, 4000, 'the close')
}, 22_000)
