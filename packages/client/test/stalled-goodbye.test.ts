// A handshake left by disconnect() after its HELLO went, in Node: it has a grace (2 s) for the
// server's OPEN, which needs the goodbye, and is cut after it. After a stall of the client's
// thread past that grace (a long synchronous task, a machine waking), expired timers run before
// the input that came meanwhile is read: the OPEN, waiting in the socket, must win over the grace,
// and the goodbye go, so that the server ends the session at once ('client disconnect') rather
// than keeping it through its recovery window. The server runs in a thread of its own
// (stall-server-worker.ts) and answers while this one is blocked.
import { afterEach, expect, it } from 'vitest'
import { until } from '../../server/test/helpers.js'
import { connect } from '../src/index.js'
import { stallOnceAsked, startWorker } from './stall-thread.js'

const closers: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

/** The grace of a handshake left by disconnect(), in Node (LEAVE_GRACE_MS in transport.ts). */
const GRACE_MS = 2000

it.each([
  // The OPEN is the server's second write there, after the 101.
  ['websocket', 2],
  ['sse', 1],
  ['polling', 1],
] as const)(
  'ends the session when the OPEN of a handshake left by disconnect() came while the thread stalled past the grace (%s)',
  async (transport, answers) => {
    // The server's middleware holds the HELLO 500 ms. Once it holds it, disconnect() leaves the
    // handshake, and this thread is blocked, a turn later, for the grace and half a second more,
    // the OPEN waiting to be read.
    const { url, writes, asked, ends } = await startWorker(closers, { helloDelay: 500 })
    const socket = connect(url, { transports: [transport], connectTimeout: 30_000, reconnection: false })
    closers.push(async () => socket.disconnect())
    await until(() => Atomics.load(asked, 0) > 0, 5000, 'the HELLO held')
    const stall = stallOnceAsked(
      asked,
      writes,
      'the HELLO held',
      () => performance.now() + GRACE_MS + 500,
      () => answers,
    )
    socket.disconnect()
    // Left to its recovery window (two minutes, the server's default), the session has not ended
    // by the time this wait gives up.
    await until(() => ends.length > 0, 4000, 'the session to end').catch(() => {})
    expect(stall.answered).toBe(true)
    expect(ends).toEqual(['client disconnect'])
  },
)
