// A server's shutdown as an HTTP client between two requests sees it: the client and the real
// server against each other, the client's next GET held back until the server is closing.
import type { AddressInfo } from 'node:net'
import { ErrorCode, type ParleyError } from '@parley/protocol'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import {
  client,
  closeAll,
  next,
  pacedFetch,
  parleyOf,
  type ServerSocket,
  startServer,
  type TestServer,
  until,
} from './helpers.js'

let server: TestServer | undefined
afterEach(closeAll)

/**
 * A client that polls at a slow pace (see `pacedFetch`), and a gate for its GETs: while `held`,
 * the next GET waits for `release()`, and the client is between two GETs.
 *
 * The pace is what makes the test sound. The held GET is let go once the server is closing,
 * after the test's own steps (the emit, the close, the drain), which a loaded machine can
 * stretch past the 100 ms a client that polls at once is given: the server would give up on it,
 * and its GET find the server gone. A client polling at PACE_MS is given four times as long,
 * and its held GET, released well within that, is one the server waits for.
 */
function gatedFetch() {
  const gate = { held: false, waiting: 0, release: () => {} }
  let opened = Promise.resolve()
  const paced = pacedFetch(PACE_MS)
  const fetchFn: typeof fetch = async (input, init) => {
    if (!gate.held || (init?.method ?? 'GET') !== 'GET') return paced(input, init)
    gate.waiting++
    await opened
    return fetch(input, init)
  }
  const hold = () => {
    gate.held = true
    opened = new Promise((resolve) => {
      gate.release = () => {
        gate.held = false
        resolve()
      }
    })
  }
  return { gate, hold, fetchFn }
}

/** The client's pace: the time from an answer to its next GET. */
const PACE_MS = 250

const closed = (app: FastifyInstance) => (app as unknown as { parley: { closed: boolean } }).parley.closed

describe.each([{}, { return503OnClosing: false }])('a shutdown (Fastify options %o)', (fastifyOptions) => {
  it('reaches a polling client whose next GET comes after the server began to close', async () => {
    const sockets: ServerSocket[] = []
    server = await startServer(
      (app) => parleyOf(app).on('connection', (socket) => sockets.push(socket)),
      {},
      0,
      fastifyOptions,
    )
    const { gate, hold, fetchFn } = gatedFetch()
    // One try only (reconnection off), and the first handshake of a cold process on a loaded
    // machine can take longer than the helpers' 800 ms: the test is about the GET, not this.
    const socket = client(server.url, {
      transports: ['polling'],
      fetch: fetchFn,
      reconnection: false,
      connectTimeout: 5000,
    })
    const got: string[] = []
    socket.on('news', (text: string) => got.push(text))
    await next(socket, 'connect', 6000)
    hold()
    // The held GET answers this; the client's next GET then waits at the gate.
    sockets[0]!.emit('news', 'last before the shutdown')
    await until(() => gate.waiting === 1, 2000, 'the next GET')
    expect(got).toEqual(['last before the shutdown'])
    const disconnected = next<[string]>(socket, 'disconnect', 5000)
    const closing = server.app.close()
    await until(() => closed(server!.app), 2000, 'the server closing')
    gate.release()
    const [reason] = await disconnected
    expect(reason).toBe('server shutdown')
    await closing
  })

  it('reaches a polling client whose listener takes a while over what came just before', async () => {
    const sockets: ServerSocket[] = []
    server = await startServer(
      (app) => parleyOf(app).on('connection', (socket) => sockets.push(socket)),
      {},
      0,
      fastifyOptions,
    )
    const socket = client(server.url, { transports: ['polling'], reconnection: false, connectTimeout: 5000 })
    // An application that renders what came for 200 ms: the client's next GET waits for it.
    socket.on('news', () => {
      const end = performance.now() + 200
      while (performance.now() < end) {}
    })
    await next(socket, 'connect', 6000)
    // Polls that come back at once: the server expects this client's GETs quickly.
    await new Promise((r) => setTimeout(r, 200))
    const disconnected = next<[string]>(socket, 'disconnect', 5000)
    sockets[0]!.emit('news', 'last before the shutdown')
    const closing = server.app.close()
    const [reason] = await disconnected
    expect(reason).toBe('server shutdown')
    await closing
  })
})

describe.each(['websocket', 'sse', 'polling'] as const)(
  'a %s client that comes while the server closes',
  (name) => {
    it("reads Fastify's bare 503 as the shutdown it is, and tries once more", async () => {
      // From the first moment of app.close(), Fastify answers every route 503 itself (its
      // `return503OnClosing`), with no code of Parley's: a Parley server takes its own endpoints
      // over then, but a Fastify in front that routes these paths elsewhere (a gateway, an instance
      // of the application that does not mount Parley) does not. An application close hook that
      // takes a while holds the server in that state while the client comes. Node hands an upgrade
      // with no 'upgrade' listener to the routes, so the WebSocket's upgrade gets that 503 too.
      const app = Fastify()
      let entered = false
      let release = () => {}
      app.addHook('preClose', async () => {
        entered = true
        await new Promise<void>((resolve) => {
          release = resolve
        })
      })
      for (const segment of Object.values(path)) app.all(`/parley/${segment}`, async () => 'not Parley')
      await app.listen({ port: 0, host: '127.0.0.1' })
      const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
      const closing = app.close()
      try {
        await until(() => entered, 2000, 'the close hook')
        const socket = client(url, { transports: [name], reconnection: false })
        const failures: [string, ParleyError<string>][] = []
        socket.on('transport_error', (transport: string, error: ParleyError<string>) =>
          failures.push([transport, error]),
        )
        const [error] = await next<[ParleyError<string>]>(socket, 'connect_error', 6000)
        expect(error.code).toBe(ErrorCode.SERVER_SHUTTING_DOWN)
        expect(error.details?.status).toBe(503)
        // The message names where the answer came from, not Fastify's "Service Unavailable".
        const scheme = name === 'websocket' ? 'ws' : 'http'
        expect(error.message).toBe(`HTTP 503 from ${url.replace(/^http/, scheme)}/parley/${path[name]}`)
        // The same transport once more, as for any node shutting down.
        expect(failures.map(([transport, e]) => [transport, e.code])).toEqual([
          [name, ErrorCode.SERVER_SHUTTING_DOWN],
          [name, ErrorCode.SERVER_SHUTTING_DOWN],
        ])
      } finally {
        // The WebSocket client's refused upgrades hold nothing up: the server ends them itself.
        release()
        await closing
      }
    })
  },
)

/** The path segment of each transport. */
const path = { websocket: 'ws', sse: 'sse', polling: 'poll' }
