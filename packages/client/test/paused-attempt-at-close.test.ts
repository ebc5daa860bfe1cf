// disconnect() while an attempt waits: for the application's `auth`, or in the pause before it
// tries the same transport again after the server's handshake middleware did not settle within
// its handshakeTimeout (with reconnection off, see Connection#connect). The wait must end with
// the attempt: left pending, the attempt's code held its transport for good (the pause's timer
// is cleared by close(), so nothing would ever resolve it), and nothing may be sent after it.
// Real client, real server, long-polling alone: every request the client makes goes through the
// `fetch` it is given, where the test counts them.
//
// What is left behind is read on the heap (`queryObjects`, after a full collection): the client
// says nothing of an attempt it dropped.
import { queryObjects, setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { afterEach, expect, it } from 'vitest'
import { PollingTransport } from '../src/transports/polling.js'
import { client, closeAll, closeClients, parleyOf, startServer, until } from './helpers.js'

afterEach(async () => {
  closeClients()
  await closeAll()
})

/**
 * Whether the live polling transports come down to `count` within 5 s (a handshake left by
 * disconnect() keeps its transport for a grace of 2 s, see afterGrace), checked every 250 ms.
 */
async function pollingTransportsDownTo(count: number): Promise<boolean> {
  for (let i = 0; i < 20; i++) {
    if ((await livePollingTransports()) <= count) return true
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  return false
}

/** Live polling transports, after a full collection between turns of the event loop. */
async function livePollingTransports(): Promise<number> {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => setImmediate(resolve))
    gc()
  }
  return queryObjects(PollingTransport, { format: 'count' }) as number
}

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

it('ends the pause after a slow handshake middleware at disconnect(), and sends nothing more', async () => {
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
  const before = await livePollingTransports()
  const { seen, counted } = countingFetch()
  // Reconnection off: the attempt pauses (its backoff's first wait, 20 s here), then tries the
  // same transport again within connectTimeout.
  const socket = client(server.url, {
    transports: ['polling'],
    reconnection: false,
    connectTimeout: 30_000,
    reconnectionDelay: 20_000,
    reconnectionDelayMax: 20_000,
    randomization: 0,
    fetch: counted,
  })
  const errors: unknown[] = []
  socket.on('connect_error', (error) => errors.push(error))
  // The HELLO's answer (PARLEY_HANDSHAKE_TIMEOUT, the middleware's) read: the pause begins as
  // the client reads it too, a few turns of the event loop later, well within its 20 s.
  await until(() => seen.answered === 1, 5000, "the HELLO's answer")
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve))
  socket.disconnect()
  expect(await pollingTransportsDownTo(before)).toBe(true)
  expect(seen.calls).toBe(1)
  expect(runs).toBe(1)
  expect(errors).toEqual([])
  expect(socket.connected).toBe(false)
})

it('ends the wait for an auth that never settles at disconnect(), and sends nothing', async () => {
  const server = await startServer()
  const before = await livePollingTransports()
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
  expect(await pollingTransportsDownTo(before)).toBe(true)
  expect(seen.calls).toBe(0)
  expect(asked).toBe(1)
})
