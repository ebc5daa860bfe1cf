// disconnect() while an attempt waits: for the application's `auth`, or in the pause before it
// tries the same transport again after the server's handshake middleware did not settle within
// its handshakeTimeout (with reconnection off, see Connection#connect). The wait must end with
// the attempt: left pending, the attempt's code held its transport for good (the pause's timer
// is cleared by close(), so nothing would ever resolve it), and nothing may be sent after it.
// Real client, real server, long-polling alone: every request the client makes goes through the
// `fetch` it is given, where the test counts them.
//
// What is left behind is read on the heap (`queryObjects`, after a full collection): the client
// says nothing of an attempt it dropped. Each test reads it once, after the disconnect, and finds
// none of this file's transports alive (the file's modules are its own: another file's
// transports are of other classes): the tests before it let theirs go, as each checks. A read
// walks the worker's whole heap, which the files before this one grew: seconds on a loaded
// machine, hence `HEAP_READING_MS`.
import { queryObjects, setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { afterEach, describe, expect, it, onTestFinished } from 'vitest'
import WebSocket from 'ws'
import type { ClientOptions } from '../src/index.js'
import { PollingTransport } from '../src/transports/polling.js'
import { WebSocketTransport } from '../src/transports/websocket.js'
import { client, closeAll, closeClients, parleyOf, startServer, until } from './helpers.js'

afterEach(async () => {
  closeClients()
  await closeAll()
})

/** Live polling transports, after a full collection between turns of the event loop. */
function livePollingTransports(): Promise<number> {
  return live(PollingTransport)
}

/**
 * The timeout of a test that reads the heap: a read (`live`) takes seconds in a worker that ran a
 * hundred files before, beside others on two busy cores (one such test took 24 s when it read it
 * twice), where the rest of the test takes one.
 */
const HEAP_READING_MS = 60_000

/** Live instances of `kind`, after a full collection between turns of the event loop. */
async function live(kind: abstract new (...args: never[]) => unknown): Promise<number> {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => setImmediate(resolve))
    gc()
  }
  return queryObjects(kind, { format: 'count' }) as number
}

/**
 * A server whose handshake middleware never settles, answered PARLEY_HANDSHAKE_TIMEOUT after
 * 100 ms, and how many times the middleware ran.
 */
async function neverSettlingServer() {
  let runs = 0
  const server = await startServer(
    (app) => {
      parleyOf(app).use(async () => {
        runs++
        await new Promise(() => {})
      })
    },
    { handshakeTimeout: 100 },
  )
  return { server, runs: () => runs }
}

/**
 * Reconnection off: a failed try pauses the attempt (its backoff's first wait, 20 s here), then
 * tries the same transport again within connectTimeout.
 */
const PAUSING = {
  reconnection: false,
  connectTimeout: 30_000,
  reconnectionDelay: 20_000,
  reconnectionDelayMax: 20_000,
  randomization: 0,
} satisfies ClientOptions

/** A fetch that counts its calls, and the answers whose bodies it has read (a copy of each). */
function countingFetch() {
  const seen = { calls: 0, answered: 0 }
  const counted: typeof fetch = async (input, init) => {
    seen.calls++
    const res = await fetch(input, init)
    const read = () => seen.answered++
    void res.clone().text().then(read, read)
    return res
  }
  return { seen, counted }
}

describe('an attempt at disconnect(), its transport read on the heap', { timeout: HEAP_READING_MS }, () => {
  it('ends the pause after a slow handshake middleware at disconnect(), and sends nothing more', async () => {
    const { server, runs } = await neverSettlingServer()
    const { seen, counted } = countingFetch()
    const socket = client(server.url, {
      transports: ['polling'],
      ...PAUSING,
      fetch: counted,
    })
    const errors: unknown[] = []
    socket.on('connect_error', (error) => errors.push(error))
    // The HELLO's answer (PARLEY_HANDSHAKE_TIMEOUT, the middleware's) read: the pause begins as
    // the client reads it too, a few turns of the event loop later, well within its 20 s.
    await until(() => seen.answered === 1, 5000, "the HELLO's answer")
    for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve))
    socket.disconnect()
    // At once: the paused attempt's transport closed when its try failed, and nothing may keep it
    // (a handshake left by disconnect() is kept for a grace of 2 s, see afterGrace: not this one).
    expect(await livePollingTransports()).toBe(0)
    expect(seen.calls).toBe(1)
    expect(runs()).toBe(1)
    expect(errors).toEqual([])
    expect(socket.connected).toBe(false)
  })

  it('lets the WebSocket of a paused attempt go at once at disconnect()', async () => {
    // The same pause on a WebSocket: its HELLO went on the upgraded socket, whose answer (the
    // middleware's PARLEY_HANDSHAKE_TIMEOUT) failed the try, which closed it.
    const { server, runs } = await neverSettlingServer()
    let answers = 0
    // The platform's WebSocket, counting what the server sends.
    class CountingWebSocket extends WebSocket {
      constructor(...args: ConstructorParameters<typeof WebSocket>) {
        super(...args)
        this.on('message', () => answers++)
      }
    }
    const socket = client(server.url, {
      transports: ['websocket'],
      ...PAUSING,
      WebSocket: CountingWebSocket as unknown as ClientOptions['WebSocket'],
    })
    await until(() => answers === 1, 5000, "the HELLO's answer")
    for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve))
    socket.disconnect()
    expect(await live(WebSocketTransport)).toBe(0)
    expect(runs()).toBe(1)
  })

  it('lets the transport go while its WebSocket still waits for the closing handshake', async () => {
    // A server slow to answer the close frame (or a link that holds it): the WebSocket lives on
    // until its closing handshake is over, or until the grace after which the client ends it. The
    // transport that closed it is done with it, and nothing of the WebSocket may keep it.
    const { server } = await neverSettlingServer()
    let answers = 0
    let closesAsked = 0
    /** The closing handshakes held back, begun at the test's end: the server's close waits for them. */
    const held: (() => void)[] = []
    const beginHeld = () => {
      for (const begin of held.splice(0)) begin()
    }
    // When the test fails before its end (after `afterEach`, which then waits for them a while).
    onTestFinished(beginHeld)
    class SlowClosingWebSocket extends WebSocket {
      constructor(...args: ConstructorParameters<typeof WebSocket>) {
        super(...args)
        this.on('message', () => answers++)
      }
      override close(...args: Parameters<WebSocket['close']>): void {
        closesAsked++
        // The closing handshake begins at the test's end: the WebSocket is still open meanwhile.
        held.push(() => super.close(...args))
      }
    }
    const socket = client(server.url, {
      transports: ['websocket'],
      ...PAUSING,
      WebSocket: SlowClosingWebSocket as unknown as ClientOptions['WebSocket'],
    })
    await until(() => answers === 1 && closesAsked > 0, 5000, "the HELLO's answer, and the close")
    socket.disconnect()
    expect(await live(WebSocketTransport)).toBe(0)
    beginHeld()
  })

  it('ends the wait for an auth that never settles at disconnect(), and sends nothing', async () => {
    const server = await startServer()
    const { seen, counted } = countingFetch()
    let asked = 0
    const socket = client(server.url, {
      transports: ['polling'],
      connectTimeout: 30_000,
      fetch: counted,
      auth: () => {
        asked++
        return new Promise<string>(() => {})
      },
    })
    await until(() => asked === 1, 5000, 'the auth')
    socket.disconnect()
    // At once: the transport waited for the auth, and never opened.
    expect(await livePollingTransports()).toBe(0)
    expect(seen.calls).toBe(0)
    expect(asked).toBe(1)
  })
})
