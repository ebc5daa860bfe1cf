// Over the HTTP transports, what the application sends in one turn goes up in one POST: a loop of
// emits, or the emits of the listeners one polling answer runs (an echo), each packet line of
// one body, rather than the first alone and the rest behind it. Each POST and each answer costs
// the server a request; counted on the real server.
import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { client, closeAll, next, parleyOf, type ServerSocket, startServer, until } from './helpers.js'

afterEach(closeAll)

/**
 * A fetch that records the packet lines of each POST a session sends after its handshake, and
 * the POSTs the server got: the same, or the test would count something else than the wire.
 */
function countingPosts() {
  const bodies: number[] = []
  let heard = 0
  const fetchPosts: typeof fetch = (input, init) => {
    if (init?.method === 'POST' && String(input).includes('sid='))
      bodies.push(String(init.body).split('\n').length)
    return fetch(input, init)
  }
  const hook = (app: FastifyInstance) =>
    app.addHook('onRequest', async (request) => {
      if (request.method === 'POST' && request.url.includes('sid=')) heard++
    })
  return { bodies, fetch: fetchPosts, hook, heard: () => heard }
}

describe.each(['polling', 'sse'] as const)('over %s', (transport) => {
  it('sends a loop of emits made in one turn in one POST, in order', async () => {
    const received: number[] = []
    const posts = countingPosts()
    const server = await startServer(
      (app) => {
        posts.hook(app)
        parleyOf(app).on('connection', (socket: ServerSocket) => {
          socket.on('n', (n: number) => received.push(n))
        })
      },
      // No heartbeat during the test: no PONG or ACK of its own to count among the POSTs.
      { pingInterval: 60_000, pingTimeout: 60_000 },
    )
    const socket = client(server.url, { transports: [transport], fetch: posts.fetch })
    await next(socket, 'connect')
    for (let n = 0; n < 20; n++) socket.emit('n', n)
    await until(() => received.length === 20, 3000, 'all 20 emits')
    expect(received).toEqual([...Array(20).keys()])
    // Sent as each emit came, the first would go alone and the other 19 after it: two POSTs.
    expect(posts.bodies).toEqual([20])
    expect(posts.heard()).toBe(1)
  })

  it('sends an emit made after an await in the next POST, as the README says', async () => {
    const received: number[] = []
    const posts = countingPosts()
    const server = await startServer(
      (app) => {
        posts.hook(app)
        parleyOf(app).on('connection', (socket: ServerSocket) => {
          socket.on('n', (n: number) => received.push(n))
        })
      },
      { pingInterval: 60_000, pingTimeout: 60_000 },
    )
    const socket = client(server.url, { transports: [transport], fetch: posts.fetch })
    await next(socket, 'connect')
    socket.emit('n', 0)
    // Its continuation is a microtask queued after the flush's: the first POST went alone.
    await Promise.resolve()
    socket.emit('n', 1)
    socket.emit('n', 2)
    await until(() => received.length === 3, 3000, 'all 3 emits')
    expect(received).toEqual([0, 1, 2])
    expect(posts.bodies).toEqual([1, 2])
  })

  it("sends the emits of one answer's listeners in one POST (an echo keeps its batches)", async () => {
    const posts = countingPosts()
    const server = await startServer(
      (app) => {
        posts.hook(app)
        parleyOf(app).on('connection', (socket: ServerSocket) => {
          socket.on('echo', (n: number) => socket.emit('echo', n))
        })
      },
      { pingInterval: 60_000, pingTimeout: 60_000 },
    )
    const socket = client(server.url, { transports: [transport], fetch: posts.fetch })
    await next(socket, 'connect')
    // Ten in flight, each echo answered by the next emit, for five rounds: the server answers a
    // POST's ten EVENTs together, and the client's listeners send the next ten together.
    const got: number[] = []
    let sent = 0
    const send = () => socket.emit('echo', sent++)
    socket.on('echo', (n: number) => {
      got.push(n)
      if (sent < 50) send()
    })
    for (let i = 0; i < 10; i++) send()
    await until(() => got.length === 50, 5000, 'fifty echoes')
    expect(got).toEqual([...Array(50).keys()])
    // Over polling each answer brings the ten echoes of one POST. Over SSE the echoes of one POST
    // may come in more than one read of the stream, each read's listeners posting together: fewer
    // than two POSTs a round all the same (sent as each emit came, a round took two at least).
    if (transport === 'polling') expect(posts.bodies).toEqual([10, 10, 10, 10, 10])
    else expect(posts.bodies.length).toBeLessThan(10)
    expect(posts.heard()).toBe(posts.bodies.length)
  })
})
