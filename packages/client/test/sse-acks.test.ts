// Over SSE an ACK alone costs a POST, so the client holds it for up to five seconds or 256
// packets; the server asks for it sooner with a PING when what it keeps for the client passes a
// quarter of its highWaterMark. Checked against the real server, which reports what it keeps
// (`bufferedAmount`) and which cuts a client that never acknowledges.
import { afterEach, describe, expect, it } from 'vitest'
import {
  client,
  closeAll,
  next,
  parleyOf,
  type ServerSocket,
  startServer,
  type TestServer,
  until,
} from './helpers.js'

let server: TestServer | undefined
afterEach(closeAll)

/** A server that counts the upstream POSTs of SSE sessions, and its one socket. */
async function sseServer(options: Record<string, unknown>) {
  const posts: number[] = []
  const state: { peer?: ServerSocket; reasons: string[] } = { reasons: [] }
  server = await startServer(
    (app) => {
      app.addHook('onRequest', async (request) => {
        if (
          request.method === 'POST' &&
          request.url.startsWith('/parley/sse') &&
          request.url.includes('sid=')
        )
          posts.push(performance.now())
      })
      parleyOf(app).on('connection', (socket) => {
        state.peer = socket
        socket.on('disconnect', (reason: string) => state.reasons.push(reason))
      })
    },
    // No heartbeat PING within the test: every PING the client sees asks for its ACK.
    { pingInterval: 30_000, pingTimeout: 30_000, ...options },
  )
  const socket = client(server.url, { transports: ['sse'] })
  const got: number[] = []
  socket.on('news', (n: number) => got.push(n))
  await next(socket, 'connect')
  await until(() => state.peer !== undefined)
  return { posts, state, got, peer: state.peer! }
}

describe('sse', () => {
  it('holds its ACK past a second, and sends it at once after 256 packets', async () => {
    const { posts, state, got, peer } = await sseServer({})
    for (let n = 1; n <= 10; n++) peer.emit('news', n)
    await until(() => got.length === 10)
    await new Promise((resolve) => setTimeout(resolve, 1500))
    expect(posts).toEqual([])
    expect(peer.bufferedAmount).toBeGreaterThan(0)
    for (let n = 11; n <= 256; n++) peer.emit('news', n)
    await until(() => got.length === 256)
    await until(() => peer.bufferedAmount === 0, 2000, 'the ACK of 256 packets')
    expect(posts).toHaveLength(1)
    expect(got).toEqual(Array.from({ length: 256 }, (_, i) => i + 1))
    expect(state.reasons).toEqual([])
  })

  it("answers the server's PING with its ACK, in one POST with the PONG, when the server keeps a lot", async () => {
    // Asks at 2 KiB kept, which two of these packets pass; cuts at 16 KiB, which sixteen of them
    // would pass unacknowledged.
    const { posts, state, got, peer } = await sseServer({ highWaterMark: 8192, maxBufferedBytes: 16_384 })
    const text = 'x'.repeat(1000)
    const sentAt = performance.now()
    for (let n = 1; n <= 2; n++) peer.emit('news', n, text)
    await until(() => peer.bufferedAmount === 0, 1500, 'the ACK the PING asked for')
    expect(posts).toHaveLength(1)
    expect(posts[0]! - sentAt).toBeLessThan(1500)
    // Past that, a steady stream of them never reaches the limit.
    for (let n = 3; n <= 40; n++) {
      peer.emit('news', n, text)
      if (n % 3 === 0) await until(() => got.length === n)
    }
    await until(() => got.length === 40)
    expect(state.reasons).toEqual([])
    expect(got).toEqual(Array.from({ length: 40 }, (_, i) => i + 1))
  })
})
