// What the tests of a stalled client thread (stalled-timers, stalled-heartbeat, stalled-goodbye)
// share: a Parley server in a thread of its own (stall-server-worker.ts), which answers while the
// test's thread is blocked, and the block itself.
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { compiledScript } from '../../../test/support/compiled-script.js'
import { until, within } from '../../server/test/helpers.js'

const entry = fileURLToPath(new URL('./stall-server-worker.ts', import.meta.url))

/** How the server in its thread is set up (see stall-server-worker.ts). */
export interface StallServerOptions {
  /** How long the server's middleware holds every HELLO, in ms. */
  helloDelay?: number
  /** How long the server holds every GET of an event stream before its first bytes, in ms. */
  streamDelay?: number
  /** The server's heartbeat, when not its defaults. */
  pingInterval?: number
  pingTimeout?: number
}

/**
 * Starts the server in its own thread; `closers` gets what stops it. `writes` counts what it
 * wrote to its connections, `moves` how often a session's transport changed there (a `transport`
 * event of the server's socket: a detach, an upgrade, a resume), `asked` the requests it holds
 * (for a token, and event streams' GETs with `streamDelay`). `ends` gets the `disconnect` reason
 * of every session that ended there, as this thread hears of it.
 */
export async function startWorker(
  closers: (() => Promise<unknown>)[],
  options: StallServerOptions = {},
): Promise<{ url: string; writes: Int32Array; moves: Int32Array; asked: Int32Array; ends: string[] }> {
  const writes = new Int32Array(new SharedArrayBuffer(4))
  const moves = new Int32Array(new SharedArrayBuffer(4))
  const asked = new Int32Array(new SharedArrayBuffer(4))
  const worker = new Worker(await compiledScript(entry), {
    workerData: { writes, moves, asked, ...options },
  })
  closers.push(async () => {
    const exited = new Promise((resolve) => worker.once('exit', resolve))
    worker.postMessage('close')
    await within(exited, 5000, 'the server thread to exit').catch(() => worker.terminate())
  })
  const ends: string[] = []
  const port = await within(
    new Promise<number>((resolve, reject) => {
      worker.on('message', (message: number | { end: string }) =>
        typeof message === 'number' ? resolve(message) : ends.push(message.end),
      )
      worker.once('error', reject)
    }),
    10_000,
    'the server thread to listen',
  )
  return { url: `http://127.0.0.1:${port}/parley`, writes, moves, asked, ends }
}

/**
 * Blocks this thread until performance.now() reaches `end`, whatever comes meanwhile; says
 * whether the server had written `answers` times by then (its answer is on its way).
 */
export function stallUntil(end: number, writes: Int32Array, answers: number): boolean {
  for (let seen = Atomics.load(writes, 0); seen < answers; seen = Atomics.load(writes, 0)) {
    if (end <= performance.now()) return false
    Atomics.wait(writes, 0, seen, end - performance.now())
  }
  // A wait on a value nothing changes: the rest of the stall, blocked.
  const rest = end - performance.now()
  if (rest > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, rest)
  return true
}

/**
 * Once the server holds a request (`asked` past 0, within a second: else no stall), blocks this
 * thread, a turn later, until `end()`, as `stallUntil` does for `answers()` writes. From then
 * rather than from a fixed time after the request began: on a busy machine it may take longer to
 * go out, and blocked before, it would never leave. `answered` is read once the test is over.
 */
export function stallOnceAsked(
  asked: Int32Array,
  writes: Int32Array,
  what: string,
  end: () => number,
  answers: () => number = () => 1,
): { answered?: boolean } {
  const stall: { answered?: boolean } = {}
  until(() => Atomics.load(asked, 0) > 0, 1000, what).then(
    () =>
      setImmediate(() => {
        stall.answered = stallUntil(end(), writes, answers())
      }),
    () => {},
  )
  return stall
}
