// Over HTTP/1.1 an SSE client holds its stream and, for its POSTs, a keep-alive connection.
// With the server's `sseUpstream: 'close-when-idle'`, the POST that answers a heartbeat, when
// the client POSTed nothing else since the one before, is answered with `Connection: close`: a
// client that only answers heartbeats then holds its stream alone between them. Checked with the real client against the real server, counting the
// server's TCP connections.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket as TcpSocket } from 'node:net'
import { describe, expect, it } from 'vitest'
import { next, own, parleyOf, type ServerSocket, until } from './helpers.js'

/**
 * An SSE client on a server with a PING every 600 ms (the test counts heartbeats, not seconds;
 * the server waits pingTimeout for a PONG before the next PING); its connections, counted.
 */
async function sseSession(test: ReturnType<typeof own>, options: Record<string, unknown>) {
  const open = new Set<TcpSocket>()
  let opened = 0
  let posts = 0
  let postsAnswering = 0
  const state: { peer?: ServerSocket; reasons: string[] } = { reasons: [] }
  const server = await test.server(
    (app) => {
      app.server.on('connection', (tcp: TcpSocket) => {
        opened++
        open.add(tcp)
        tcp.once('close', () => open.delete(tcp))
      })
      app.server.on('request', (request: IncomingMessage, response: ServerResponse) => {
        if (request.method !== 'POST' || !request.url?.includes('sid=')) return
        posts++
        postsAnswering++
        response.once('close', () => postsAnswering--)
      })
      parleyOf(app).on('connection', (socket) => {
        state.peer = socket
        socket.on('disconnect', (reason: string) => state.reasons.push(reason))
        socket.on('echo', (text: string, ack: (reply: string) => void) => ack(text.toUpperCase()))
      })
    },
    { pingInterval: 600, pingTimeout: 600, ...options },
  )
  const socket = test.client(server.url, { transports: ['sse'] })
  await next(socket, 'connect')
  await until(() => state.peer !== undefined)
  return { socket, open, state, opened: () => opened, posts: () => posts, answering: () => postsAnswering }
}

/** Waits for `count` more upstream POSTs, then for the server to have closed what it will. */
async function heartbeats(session: { posts(): number }, count: number) {
  const target = session.posts() + count
  await until(() => session.posts() >= target, 5000, `${count} heartbeat POSTs`)
  await new Promise((resolve) => setTimeout(resolve, 50))
}

// Each test waits for heartbeats on a server of its own (`own`): they go side by side.
describe.concurrent("sse: the POST connection after a heartbeat (the server's sseUpstream)", () => {
  it("'close-when-idle': between heartbeats the client holds its stream alone, and carries on", async (context) => {
    // A heartbeat a second apart: the exchange below must be over before the next PONG is POSTed,
    // or the PONG opens a connection beside the exchange's, which is still busy (on a loaded
    // machine, 600 ms was not always enough).
    const session = await sseSession(own(context), { sseUpstream: 'close-when-idle', pingInterval: 1000 })
    await heartbeats(session, 4)
    // The stream, and no keep-alive connection once a PONG was answered.
    await until(() => session.open.size === 1, 2000, 'one connection between heartbeats')
    // Each heartbeat's POST came on a connection of its own.
    expect(session.opened()).toBeGreaterThanOrEqual(5)
    // The session is whole: events and replies both ways, over new connections.
    const got: number[] = []
    session.socket.on('news', (n: number) => got.push(n))
    for (let n = 1; n <= 3; n++) session.state.peer!.emit('news', n)
    expect(await session.socket.emitWithAck('echo', 'still here')).toBe('STILL HERE')
    await until(() => got.length === 3)
    expect(got).toEqual([1, 2, 3])
    // The reply came on the stream, maybe before the echo's POST was answered.
    await until(() => session.answering() === 0, 2000, 'the POST answered')
    // A client that talked keeps its POST connection through the next heartbeat...
    await heartbeats(session, 1)
    expect(session.open.size).toBe(2)
    // ...and holds its stream alone again after a quiet one.
    await heartbeats(session, 1)
    await until(() => session.open.size === 1, 2000, 'one connection after a quiet heartbeat')
    expect(session.state.reasons).toEqual([])
    expect(session.socket.connected).toBe(true)
  })

  it("'keep-alive' (the default): the POST connection stays from one heartbeat to the next", async (context) => {
    const session = await sseSession(own(context), {})
    await heartbeats(session, 4)
    expect(session.open.size).toBe(2)
    expect(session.opened()).toBe(2)
    expect(session.state.reasons).toEqual([])
  })
})
