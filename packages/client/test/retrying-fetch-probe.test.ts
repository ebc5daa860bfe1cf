// An application's fetch may try a request again on its own. Its SSE probe's first try delivered
// the HELLO, which the server took (moving the session onto the probe), though the answer was cut
// on its way back; the second try was refused before it connected, and the fetch rejects with
// that refusal (ECONNREFUSED in its cause). The client saw no answer, nothing more: the probe may
// have been taken, and the refusal of a request of the transport in use that follows
// (PARLEY_TRANSPORT_MISMATCH) is that move, followed at once on the same transport, with no
// `transport_error`. Taken by the last try's refusal for a probe that never reached the server,
// the move was told as a lost transport instead. Real client, real server, the fault proxy
// refusing WebSockets, cutting the answer to that HELLO and holding the polls.
import { afterEach, describe, expect, it } from 'vitest'
import { type FaultProxy, startFaultProxy } from '../../../test/support/fault-proxy.js'
import { freePort } from '../../../test/support/ports.js'
import { client, closeAll, next, parleyOf, type ServerSocket, startServer, until } from './helpers.js'
import { transportStory } from './probe-mismatch-scene.js'

let proxy: FaultProxy | undefined
let release = () => {}
afterEach(async () => {
  release()
  await proxy?.close()
  proxy = undefined
  await closeAll()
})

/**
 * An application's fetch that tries a failed SSE handshake (a POST without `sid`) once more,
 * that second try refused before it connects (sent where nothing listens).
 */
async function retryingFetch(): Promise<{ fetch: typeof fetch; retries: () => number }> {
  const nowhere = `http://127.0.0.1:${await freePort()}`
  let retries = 0
  return {
    retries: () => retries,
    fetch: async (input, init) => {
      const url = String(input)
      if (init?.method !== 'POST' || !url.includes('/sse?') || url.includes('sid=')) return fetch(input, init)
      try {
        return await fetch(url, init)
      } catch {
        try {
          return await fetch(url.replace(/^http:\/\/[^/]+/, nowhere), init)
        } finally {
          // Counted once the second try failed: the client hears it right after.
          retries++
        }
      }
    },
  }
}

describe('an SSE probe whose retrying fetch rejects with its last try refused, the first taken', () => {
  it('is a probe that may have been taken: its move is followed at once, blaming nothing', async () => {
    const received: number[] = []
    const peers: ServerSocket[] = []
    const server = await startServer(
      (app) => {
        parleyOf(app).on('connection', (socket) => {
          peers.push(socket)
          socket.on('n', (n: number) => received.push(n))
        })
      },
      // A heartbeat window longer than the polls are held below.
      { pingInterval: 5000, pingTimeout: 5000 },
    )
    proxy = await startFaultProxy(server.port)
    const p = proxy
    p.ws = 'reject'
    const retrying = await retryingFetch()
    const socket = client(p.url, {
      // Polling first: the climb probes WebSocket (refused at its upgrade), then SSE, 300 ms
      // after the attach.
      transports: ['polling', 'websocket', 'sse'],
      fetch: retrying.fetch,
      upgradeDelay: 300,
      upgradeDelayMax: 60_000,
      // A backoff far longer than the test: a resume that waited for it would never come.
      reconnectionDelay: 60_000,
      reconnectionDelayMax: 60_000,
      randomization: 0,
      // Under load the first polling handshake may take longer than the default 3 s: it must not
      // step down to SSE before the scene starts.
      connectTimeout: 15_000,
    })
    const said = transportStory(socket)
    await next(socket, 'connect')
    expect(socket.transport).toBe('polling')
    said.length = 0
    // The probe's HELLO reaches the server, which moves the session onto it; the answer is cut.
    // The MOVED the server then says on the poll is held back: the POST below meets the move.
    p.hellos = 'cut'
    release = p.hold()
    await until(() => retrying.retries() >= 1, 5000, 'the retry')
    await until(() => p.cutHellos >= 1, 5000, 'the HELLO taken')
    p.hellos = 'pass'
    // Refused PARLEY_TRANSPORT_MISMATCH: the session is on the probe's transport.
    socket.emit('n', 0)
    await until(() => said.length >= 1, 5000, 'the move followed')
    release()
    expect(said[0], said.join(', ')).toBe('polling -> polling (resume)')
    socket.emit('n', 1)
    await until(() => received.length >= 2, 5000, 'both messages')
    expect(received).toEqual([0, 1])
    expect(peers).toHaveLength(1)
    expect(socket.recovered).toBe(true)
  }, 30_000)
})
