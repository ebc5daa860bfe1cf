// Where Parley registered @fastify/websocket, its WebSockets stay out of ws's tracking (Parley
// closes them itself); the application's own WebSocket routes keep it.
import parley from '@parley/server'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { closeApp, until, within } from './helpers.js'
import { type RawClient, rawConnect } from './raw-client.js'

let app: FastifyInstance | undefined
const clients: RawClient[] = []

afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  await closeApp(app)
  app = undefined
})

describe("Parley's own @fastify/websocket", () => {
  it("leaves Parley's WebSockets out of websocketServer.clients, and the app's close still closes every WebSocket", async () => {
    app = Fastify()
    await app.register(parley)
    app.get('/echo', { websocket: true }, (socket) => {
      socket.on('message', (data) => socket.send(data))
    })
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as { port: number }
    const parleyClient = await rawConnect('websocket', `http://127.0.0.1:${port}/parley`)
    clients.push(parleyClient)
    const own = new WebSocket(`ws://127.0.0.1:${port}/echo`)
    await within(
      new Promise((resolve) => own.once('open', resolve)),
      5000,
      'the WebSocket of the application to open',
    )
    await until(() => app!.parley.socketsCount === 1)
    expect(app.websocketServer.clients.size).toBe(1)
    const ownClosed = new Promise<number>((resolve) => own.once('close', (code) => resolve(code)))
    const closing = app.close()
    // Parley says goodbye with CLOSE 'server shutdown' and 1001; @fastify/websocket closes the
    // application's own WebSocket.
    expect(await within(parleyClient.ended, 5000, "the close of Parley's WebSocket")).toBe(1001)
    expect(await within(ownClosed, 5000, "the close of the application's WebSocket")).toBeGreaterThanOrEqual(
      1000,
    )
    await closing
    app = undefined
  })

  it('tracks a WebSocket of the application opened while Parley holds its own', async () => {
    app = Fastify()
    await app.register(parley)
    app.get('/echo', { websocket: true }, () => {})
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as { port: number }
    clients.push(await rawConnect('websocket', `http://127.0.0.1:${port}/parley`))
    const own = [0, 1].map(() => new WebSocket(`ws://127.0.0.1:${port}/echo`))
    await within(
      Promise.all(own.map((ws) => new Promise((resolve) => ws.once('open', resolve)))),
      5000,
      'the WebSockets of the application to open',
    )
    clients.push(await rawConnect('websocket', `http://127.0.0.1:${port}/parley`))
    expect(app.websocketServer.clients.size).toBe(2)
    own[0]!.close()
    await until(() => app!.websocketServer.clients.size === 1)
    for (const ws of own) ws.terminate()
  })
})
