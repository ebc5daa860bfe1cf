// Parley's WebSockets stay out of ws's tracking (Parley closes them itself, after its drain, with
// its CLOSE packet); the application's own WebSocket routes keep it. So too where the application
// registered @fastify/websocket itself, before Parley: that registration's close hook, which runs
// before Parley's, closes only the application's own.
import websocket from '@fastify/websocket'
import { connect, type Socket } from '@parley/client'
import parley from '@parley/server'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { type RoundRobinProxy, startRoundRobin } from '../../../test/support/round-robin.js'
import { Cluster } from './cluster-adapter.js'
import { closeApp, until, within } from './helpers.js'
import { type RawClient, rawConnect } from './raw-client.js'

let app: FastifyInstance | undefined
const clients: RawClient[] = []
const sockets: Socket[] = []
const others: FastifyInstance[] = []
let balancer: RoundRobinProxy | undefined

afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  for (const socket of sockets.splice(0)) socket.disconnect()
  await balancer?.close()
  balancer = undefined
  for (const other of others.splice(0)) await closeApp(other)
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

describe("the application's own @fastify/websocket, registered before Parley", () => {
  it('refuses perMessageDeflate, which that registration decides, rather than drop it', async () => {
    app = Fastify()
    await app.register(websocket)
    const error = await app.register(parley, { perMessageDeflate: true }).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: 'perMessageDeflate' })
    expect((error as Error).message).toContain("set perMessageDeflate in that registration's options")
  })

  it("leaves Parley's WebSockets to Parley at close: their clients get CLOSE server shutdown, not that registration's bare close", async () => {
    app = Fastify()
    await app.register(websocket)
    await app.register(parley)
    app.get('/echo', { websocket: true }, (socket) => {
      socket.on('message', (data) => socket.send(data))
    })
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as { port: number }
    const client = connect(`http://127.0.0.1:${port}/parley`, { transports: ['websocket'] })
    sockets.push(client)
    const lost: string[] = []
    client.on('transport_error', (_transport, error) => lost.push(error.code))
    const disconnected = new Promise<string>((resolve) => client.once('disconnect', resolve))
    const own = new WebSocket(`ws://127.0.0.1:${port}/echo`)
    await within(
      new Promise((resolve) => own.once('open', resolve)),
      5000,
      'the WebSocket of the application to open',
    )
    await until(() => client.connected, 3000, 'the client connected')
    expect(app.websocketServer.clients.size).toBe(1)
    const ownClosed = new Promise<number>((resolve) => own.once('close', (code) => resolve(code)))

    const closing = app.close()
    expect(await within(disconnected, 5000, "the client's disconnect")).toBe('server shutdown')
    expect(lost).toEqual([])
    expect(await within(ownClosed, 5000, "the close of the application's WebSocket")).toBeGreaterThanOrEqual(
      1000,
    )
    await closing
    app = undefined
  })

  it("hands Parley's sessions off at close: their clients get CLOSE server handoff and resume on another node", async () => {
    const cluster = new Cluster({ handoff: true })
    const node = async (name: string) => {
      const started = Fastify({ forceCloseConnections: true, return503OnClosing: false })
      await started.register(websocket)
      await started.register(parley, {
        adapter: cluster.adapter(name),
        handoff: { timeout: 2000, retrySpread: 0 },
      })
      await started.listen({ port: 0, host: '127.0.0.1' })
      return started
    }
    app = await node('a')
    const b = await node('b')
    others.push(b)
    const restored: string[] = []
    b.parley.on('restored', (socket) => restored.push(socket.id))
    const port = (node: FastifyInstance) => (node.server.address() as { port: number }).port
    balancer = await startRoundRobin([port(app), port(b)])
    balancer.avoid.add(1)
    const client = connect(`${balancer.url}/parley`, { transports: ['websocket'] })
    sockets.push(client)
    const lost: string[] = []
    client.on('transport_error', (_transport, error) => lost.push(error.code))
    const disconnects: string[] = []
    client.on('disconnect', (reason) => disconnects.push(reason))
    await until(() => client.connected && app!.parley.socketsCount === 1, 3000, 'the client connected to a')
    const id = client.id

    balancer.avoid.clear()
    balancer.avoid.add(0)
    await within(app.close(), 5000, 'a closed')
    app = undefined
    await until(() => restored.length === 1 && client.connected, 5000, 'the session taken over by b')
    expect(restored).toEqual([id])
    expect(client.id).toBe(id)
    expect(client.recovered).toBe(true)
    expect(lost).toEqual([])
    expect(disconnects).toEqual([])
  })
})
