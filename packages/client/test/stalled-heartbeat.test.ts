// The heartbeat and the upstream POST's bound after a stall of the client's thread (a tab frozen
// and resumed, a laptop waking, a long synchronous task): their timers, run out during the stall,
// run before the input that came meanwhile is read. A PING (or a POST's answer) waiting in the
// socket must win, and the session go on; a server that sent nothing still loses its transport.
//
// The server (stall-server-worker.ts, in a thread of its own) pings every pingTimeout when that
// is the longer (PING, pingTimeout for an answer, PING again at once), and the client allows it
// pingInterval + pingTimeout of silence. Blocked from just after a PING for longer than that
// window, the client has the next PING waiting when the thread runs again, and can still answer
// it before the server's own check of it, a pingTimeout after it. (With pingTimeout no longer than
// pingInterval, as by the server's defaults, PINGs come a pingInterval apart, and that check falls
// before the client's window ends: a stall that outlasts the window loses the transport at the
// server too, and the client resumes whatever it reads first. These tests give the server its
// heartbeat so that the client's own verdict is the only one.)
import { afterEach, expect, it } from 'vitest'
import { until, within } from '../../server/test/helpers.js'
import { connect } from '../src/index.js'
import type { Socket } from '../src/socket.js'
import { stallUntil, startWorker } from './stall-thread.js'

const PING_INTERVAL = 400
const PING_TIMEOUT = 2000
/** The silence the client allows the server. */
const WINDOW = PING_INTERVAL + PING_TIMEOUT

const closers: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

const heartbeat = { pingInterval: PING_INTERVAL, pingTimeout: PING_TIMEOUT }

/** A client connected over `transport` alone, and what it says that a live session should not. */
async function connected(
  url: string,
  transport: 'websocket' | 'sse' | 'polling',
): Promise<{ socket: Socket; said: string[] }> {
  const socket = connect(url, { transports: [transport], reconnection: false })
  closers.push(async () => socket.disconnect())
  const said: string[] = []
  socket.on('transport_error', (name, error) => void said.push(`${name}: ${error.message}`))
  socket.on('connect_error', (error) => void said.push(`${error.code}: ${error.message}`))
  socket.on('disconnect', (reason) => void said.push(`disconnect: ${reason}`))
  await within(new Promise<void>((resolve) => socket.once('connect', () => resolve())), 5000, 'the connect')
  return { socket, said }
}

/**
 * Waits for the server's first PING (pingInterval after the OPEN, the first write since), then
 * a while for the client to read and answer it (over polling, by its next GET): unanswered when
 * the stall begins, it would be the server's check of that PING that lost the transport. A
 * while that a busy machine may stretch: the stall that follows leaves the server's check of
 * the next PING most of a second after it ends.
 */
async function afterFirstPing(writes: Int32Array): Promise<void> {
  const before = Atomics.load(writes, 0)
  await until(() => Atomics.load(writes, 0) > before, 3000, 'the first PING')
  await new Promise((resolve) => setTimeout(resolve, 250))
}

/**
 * Blocks this thread for `ms` from the check phase of this turn (blocked in the timers phase
 * itself, Node would go on with the loop time read before the stall, and read the input before
 * the timers that expired meanwhile); says whether the server wrote anything meanwhile.
 */
function stall(ms: number, writes: Int32Array): Promise<boolean> {
  return new Promise((resolve) =>
    setImmediate(() => resolve(stallUntil(performance.now() + ms, writes, Atomics.load(writes, 0) + 1))),
  )
}

it.each(['websocket', 'sse', 'polling'] as const)(
  'keeps the session on %s when a PING came while the thread stalled past the heartbeat window',
  async (transport) => {
    const { url, writes, moves } = await startWorker(closers, heartbeat)
    const { socket, said } = await connected(url, transport)
    const id = socket.id
    await afterFirstPing(writes)
    // The window runs out 2.4 s after that PING, during the stall; the next PING comes 2 s after
    // it, during the stall too.
    expect(await stall(WINDOW + 400, writes)).toBe(true)
    expect(await within(socket.timeout(2500).emitWithAck('echo', 1), 3000, 'the first echo')).toBe(1)
    expect(said).toEqual([])
    // Past the server's check of the PING read after the stall (a pingTimeout after it, which
    // came before the stall ended): the server got its answer, and the session goes on there too.
    await new Promise((resolve) => setTimeout(resolve, PING_TIMEOUT))
    expect(await within(socket.timeout(2500).emitWithAck('echo', 2), 3000, 'the second echo')).toBe(2)
    expect(said).toEqual([])
    expect(Atomics.load(moves, 0)).toBe(0)
    expect(socket.id).toBe(id)
    expect(socket.transport).toBe(transport)
  },
  // The waits' bounds (the server's start 10 s, the connect 5 s, the first PING 3 s, the stall,
  // the echoes 3 s each, the server's check 2 s) with 2 s to spare.
  31_000,
)

it('still loses the transport to the heartbeat when the server sent nothing through the stall', async () => {
  const { url, writes } = await startWorker(closers, heartbeat)
  const { socket, said } = await connected(url, 'websocket')
  await afterFirstPing(writes)
  // The server's thread is held longer than the client's stall and its window: no PING comes.
  socket.emit('hold', WINDOW + 2000)
  expect(await stall(WINDOW + 400, writes)).toBe(false)
  await until(() => said.length > 0, 5000, 'the transport lost')
  expect(said[0]).toBe(`websocket: nothing from the server within ${WINDOW} ms`)
}, 28_000)

it("keeps the polling transport when a POST's answer came while the thread stalled past its bound", async () => {
  const { url, writes, moves } = await startWorker(closers, heartbeat)
  const { socket, said } = await connected(url, 'polling')
  const id = socket.id
  await afterFirstPing(writes)
  // Its POST goes at once; the server holds its answer 300 ms (its thread busy with the event),
  // and this thread is blocked from 100 ms on, past the POST's bound (the heartbeat window). The
  // next PING comes during the stall too.
  const reply = socket.timeout(4500).emitWithAck('hold', 300)
  await new Promise((resolve) => setTimeout(resolve, 100))
  expect(await stall(WINDOW + 400, writes)).toBe(true)
  await within(reply, 5000, 'the reply to hold')
  expect(said).toEqual([])
  expect(Atomics.load(moves, 0)).toBe(0)
  expect(socket.id).toBe(id)
  expect(socket.transport).toBe('polling')
}, 28_000)
