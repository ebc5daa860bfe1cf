// A new session whose OPEN never reached its client: over SSE and polling the OPEN is the answer
// to the handshake POST, which a proxy can cut after the server took the HELLO. The client says
// HELLO again and gets a second session; the first must not live on through the heartbeat and
// the recovery window, nor may a client whose first GET is slow lose its own. Real client, real
// server, and a proxy that cuts the answer to the first HELLO.
//
// Each case waits seconds on the server's bound, and little else: the four run side by side
// (`describe.concurrent`), each with its own server, proxy and client, closed when it finishes
// (`own` in helpers.ts: no shared afterEach).
import http from 'node:http'
import { describe, expect, it } from 'vitest'
import { startFaultProxy } from '../../../test/support/fault-proxy.js'
import { next, own, parleyOf, type ServerSocket, until } from './helpers.js'

const SERVER_OPTIONS = { pingInterval: 2000, pingTimeout: 1000, handshakeTimeout: 1000 }
/**
 * The bound: the server's wait for a transport's first GET, handshakeTimeout + pingInterval +
 * pingTimeout after the OPEN. The recovery window is the default (two minutes): without the
 * bound, a session no client came for would outlive every test here.
 */
const BOUND = SERVER_OPTIONS.handshakeTimeout + SERVER_OPTIONS.pingInterval + SERVER_OPTIONS.pingTimeout

/** A server that records every socket it opens and why each ended. */
async function recordingServer(test: ReturnType<typeof own>) {
  const sockets: ServerSocket[] = []
  const ended = new Map<string, string>()
  const server = await test.server((app) => {
    parleyOf(app).on('connection', (socket) => {
      sockets.push(socket)
      socket.on('disconnect', ((reason: string) => ended.set(socket.id, reason)) as (
        ...args: never[]
      ) => void)
      socket.on('echo', ((n: number, ack: (n: number) => void) => ack(n)) as (...args: never[]) => void)
    })
  }, SERVER_OPTIONS)
  return { server, sockets, ended }
}

/** A HELLO POST whose answer is read and thrown away: a session whose client never learns of it. */
function lostHello(port: number, kind: 'sse' | 'poll'): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: 'POST', path: `/parley/${kind}?v=1` },
      (res) => {
        res.resume()
        res.on('end', resolve)
      },
    )
    req.on('error', reject)
    req.end('[8,{}]')
  })
}

describe.concurrent.each([
  ['sse', 'sse'],
  ['polling', 'poll'],
] as const)('a new session over %s whose client never got its OPEN', (transport, segment) => {
  it('ends within handshakeTimeout + pingInterval + pingTimeout, and the application hears one lasting connection for the client', async (context) => {
    const test = own(context)
    const { server, sockets, ended } = await recordingServer(test)
    const p = test.later(await startFaultProxy(server.port))
    // The first HELLO reaches the server, its answer is cut; the client's next one passes.
    p.hellos = 'cut'
    const socket = test.client(p.url, {
      transports: [transport],
      // The first HELLO must end by the proxy's cut, not by the client's own limit (800 ms in
      // these tests): a loaded machine's first answer took 900 ms, and the client, which had
      // given up on it, said HELLO again before the proxy could cut anything.
      connectTimeout: 5000,
      fetch: (url, init) =>
        fetch(url, init).catch((error: unknown) => {
          if (init?.method === 'POST' && !String(url).includes('sid=')) p.hellos = 'pass'
          throw error
        }),
    })
    await next(socket, 'connect', 10_000)
    expect(p.cutHellos).toBe(1)
    await until(() => sockets.length === 2, 3000, 'both sessions to open')
    const [orphan, kept] = sockets as [ServerSocket, ServerSocket]
    expect(socket.id).toBe(kept.id)
    await until(() => ended.has(orphan.id), 3 * BOUND, 'the session no client came for to end')
    expect(ended.get(orphan.id)).toBe('transport close')
    expect([...parleyOf(server.app).sockets.keys()]).toEqual([kept.id])
    // The client's own session goes on past the bound, through the heartbeat.
    expect(await socket.timeout(3000).emitWithAck('echo', 7)).toBe(7)
    expect(ended.has(kept.id)).toBe(false)
    expect(sockets).toHaveLength(2)
  }, 30_000)

  it('keeps the session of a client whose first GET comes late, within the bound', async (context) => {
    const test = own(context)
    const { server, sockets, ended } = await recordingServer(test)
    let delayed = 0
    const socket = test.client(server.url, {
      transports: [transport],
      connectTimeout: 5000,
      // The first GET (the downstream) goes a third of the bound after the OPEN.
      fetch: async (url, init) => {
        if ((init?.method ?? 'GET') === 'GET' && delayed++ === 0)
          await new Promise((resolve) => setTimeout(resolve, BOUND / 3))
        return fetch(url, init)
      },
    })
    await next(socket, 'connect', 5000)
    expect(delayed).toBeGreaterThan(0)
    const mine = sockets[0]!
    // A session opened after the client's, which no client comes for: once it ended, the
    // client's own bound has passed too.
    await lostHello(server.port, segment)
    await until(() => sockets.length === 2, 3000, 'the lost session to open')
    const lost = sockets[1]!
    await until(() => ended.has(lost.id), 3 * BOUND, 'the lost session to end')
    expect(ended.get(lost.id)).toBe('transport close')
    expect(ended.has(mine.id)).toBe(false)
    expect(await socket.timeout(3000).emitWithAck('echo', 1)).toBe(1)
    expect(socket.id).toBe(mine.id)
    expect([...parleyOf(server.app).sockets.keys()]).toEqual([mine.id])
  }, 25_000)
})
