// A stall of the server's own event loop (a long synchronous task, a major GC, a debugger's
// pause) while it lingers on a connection whose answer went before its body ended (see
// http/lingering-close.ts): the rest of the body and the client's end that arrived during a
// stall past the lingering time are read before that time's verdict, and the connection ends as
// the client ended it. Destroyed with them unread, the connection was reset, which a client's
// system may answer by throwing away what it had not read yet, the answer included (see
// lingering-close.test.ts). The server runs in this thread, which the test blocks; the client
// (stall-late-reader-worker.ts) runs in a thread of its own, its rest held by the gate of
// stall-gate.ts until the stall has begun.
import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { afterEach, expect, it, vi } from 'vitest'
import { compiledScript } from '../../../test/support/compiled-script.js'
import { closeApp, startServer, until, within } from './helpers.js'
import { head } from './raw-http.js'
import { stallFromCheckPhase } from './stall.js'
import { HOLD } from './stall-gate.js'

/**
 * How long the server lingers here, rather than LINGER_MS (2 s): the stall outlasts it. The mock
 * below, hoisted above this, repeats it.
 */
const LINGER_MS = 500
const STALL_MS = 1500

vi.mock('../src/http/lingering-close.js', async (original) => {
  const actual = await original<typeof import('../src/http/lingering-close.js')>()
  return { ...actual, lingerOnClose: (res: ServerResponse) => actual.lingerOnClose(res, 500) }
})

const entry = fileURLToPath(new URL('./stall-late-reader-worker.ts', import.meta.url))

const closers: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

/** A chunk of a chunked body of `size` bytes. */
const chunkOf = (size: number) => `${size.toString(16)}\r\n${'x'.repeat(size)}\r\n`

it("closes without a reset a connection whose body's rest came while the server's thread stalled past its lingering", async () => {
  expect(LINGER_MS).toBeLessThan(STALL_MS)
  const gate = new Int32Array(new SharedArrayBuffer(8))
  let stalled: Promise<boolean> | undefined
  const started = await startServer({ maxPayload: 256 }, (app) => {
    // The 413 is out, and the server lingers from then on: the stall begins.
    app.addHook('onResponse', async () => {
      stalled ??= stallFromCheckPhase(gate, HOLD, STALL_MS)
    })
  })
  closers.push(() => closeApp(started.app))
  let server: Socket | undefined
  started.app.server.once('connection', (socket) => {
    server = socket
  })
  const { port } = started.app.server.address() as { port: number }
  // A chunked body past maxPayload: 413 at its first chunk; its next chunk and end during the stall.
  const first = head('POST', '/parley/poll?v=1', {
    'Content-Type': 'text/plain',
    'Transfer-Encoding': 'chunked',
  })
  const sent = { first: first + chunkOf(300), rest: `${chunkOf(300)}0\r\n\r\n` }
  const worker = new Worker(await compiledScript(entry), { workerData: { port, ...sent, gate } })
  closers.push(() => worker.terminate())
  await until(() => stalled !== undefined, 5000, 'the answer and the stall')
  expect(await within(stalled as Promise<boolean>, 4000, 'the stall')).toBe(true)
  await until(() => server?.destroyed === true, 3000, 'the connection to close')
  // It read the rest, and the client's end, before it closed: the connection ended without a reset.
  expect(server?.bytesRead).toBe(sent.first.length + sent.rest.length)
  const read = new Promise<{ status: number; error?: string }>((resolve) => worker.once('message', resolve))
  worker.postMessage('read')
  expect(await within(read, 4000, 'what the client reads')).toEqual({ status: 413, error: undefined })
}, 22_000)
