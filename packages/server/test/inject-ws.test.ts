// `app.injectWS` (from @fastify/websocket) opens a WebSocket on the app without a listening
// server: the stream under it is a duplex stand-in, not a TCP connection, and its upgrade
// request has no socket of its own. Parley must take such a WebSocket as it takes a real one.
import websocket from '@fastify/websocket'
import { decodeFrame, encodeText, type Packet, PacketType, WS_SUBPROTOCOL } from '@parley/protocol'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import type WebSocket from 'ws'
import { unheard } from '../../../test/support/unheard.js'
import parley, { type ServerSocket } from '../src/index.js'
import { closeApp, until, within } from './helpers.js'

let app: FastifyInstance | undefined
afterEach(async () => {
  await closeApp(app)
  app = undefined
})

/** What an injected WebSocket received, decoded. */
function packetsOf(ws: WebSocket): Packet[] {
  const packets: Packet[] = []
  ws.on('message', (data: Buffer, binary: boolean) => {
    const decoded = decodeFrame(binary ? new Uint8Array(data) : data.toString(), { maxPayload: 1e8 })
    if (decoded.ok) packets.push(decoded.packet)
  })
  return packets
}

/**
 * A session over `app.injectWS(target)`: HELLO gets an OPEN, an event with an ack id gets its
 * reply, the server's emit arrives, and the stream's end leaves the session waiting for a resume.
 */
async function session(
  injecting: FastifyInstance,
  target: string,
  scope: () => FastifyInstance,
): Promise<void> {
  const sockets: ServerSocket[] = []
  scope().parley.on('connection', (socket) => {
    sockets.push(socket)
    socket.on('echo', (text: unknown, ack?: (reply: unknown) => void) => ack?.(text))
  })
  const ws = await within(
    injecting.injectWS(target, { headers: { 'sec-websocket-protocol': WS_SUBPROTOCOL } }),
    2000,
    'the injected upgrade',
  )
  const packets = packetsOf(ws)
  ws.send('[8,{}]')
  await until(() => packets.some((p) => p.type === PacketType.OPEN), 2000, 'OPEN')
  ws.send('[5,1,"echo",["hi"],1]')
  await until(() => packets.some((p) => p.type === PacketType.REPLY), 2000, 'the reply')
  expect(packets.find((p) => p.type === PacketType.REPLY)).toMatchObject({ ackId: 1, args: ['hi'] })
  const socket = sockets[0]!
  socket.emit('news', 42)
  await until(() => packets.some((p) => p.type === PacketType.EVENT), 2000, 'the event')
  expect(packets.find((p) => p.type === PacketType.EVENT)).toMatchObject({ name: 'news', args: [42] })
  ws.terminate()
  await until(() => socket.transport === null, 2000, 'the transport to go')
  expect(socket.connected).toBe(true)
  const reasons: string[] = []
  socket.on('disconnect', (reason) => reasons.push(reason))
  // Its close ends the session waiting for a resume, as it ends any other.
  const root = app!
  app = undefined
  await root.close()
  expect(reasons).toEqual(['server shutdown'])
}

describe('app.injectWS', () => {
  it.each([
    ['where Parley registers @fastify/websocket itself', {}, '/parley/ws?v=1'],
    ['at a custom path', { path: '/live' }, '/live/ws?v=1'],
  ])('opens a session %s', async (_where, options, url) => {
    const thrown = await unheard(async () => {
      const made = Fastify()
      app = made
      await made.register(parley, options)
      await made.ready()
      await session(made, url, () => made)
    })
    expect(thrown).toEqual([])
  })

  it.each([
    ['where Parley registers @fastify/websocket itself', false],
    ["with the application's @fastify/websocket", true],
  ])('hands ws the Sec-WebSocket-Version of the upgrade as text, %s', async (_where, own) => {
    // injectWS writes the number 13 there, where a request off the wire has text: ws from
    // 8.23.1 on compares the text, and would answer such an upgrade 400 after the hooks.
    const made = Fastify()
    app = made
    if (own) await made.register(websocket)
    await made.register(parley)
    await made.ready()
    const versions: unknown[] = []
    made.websocketServer.on(
      'headers',
      (_headers: string[], request: { headers: Record<string, unknown> }) => {
        versions.push(request.headers['sec-websocket-version'])
      },
    )
    const ws = await within(
      made.injectWS('/parley/ws?v=1', { headers: { 'sec-websocket-protocol': WS_SUBPROTOCOL } }),
      2000,
      'the injected upgrade',
    )
    expect(versions).toEqual(['13'])
    ws.terminate()
  })

  it("opens a session under a prefix, with the application's @fastify/websocket", async () => {
    const thrown = await unheard(async () => {
      const made = Fastify()
      app = made
      // Registered in the application's context: `app.injectWS` is then the application's, and
      // reaches every route, Parley's in a prefixed context included.
      await made.register(websocket)
      let scoped: FastifyInstance | undefined
      await made.register(
        async (scope) => {
          await scope.register(parley, { path: '/rt' })
          scoped = scope
        },
        { prefix: '/api' },
      )
      await made.ready()
      await session(made, '/api/rt/ws?v=1', () => scoped!)
    })
    expect(thrown).toEqual([])
  })

  it('opens a session in a child context through that context, where Parley registers @fastify/websocket', async () => {
    const thrown = await unheard(async () => {
      const made = Fastify()
      app = made
      let scoped: FastifyInstance | undefined
      await made.register(
        async (scope) => {
          await scope.register(parley, { path: '/rt' })
          scoped = scope
        },
        { prefix: '/api' },
      )
      await made.ready()
      await session(scoped!, '/api/rt/ws?v=1', () => scoped!)
    })
    expect(thrown).toEqual([])
  })

  it('gives the session an empty address, behind a trusted proxy too', async () => {
    for (const trustProxy of [false, true]) {
      const thrown = await unheard(async () => {
        const made = Fastify({ trustProxy })
        app = made
        await made.register(parley, {})
        const addresses: unknown[] = []
        made.parley.on('connection', (socket) => addresses.push(socket.handshake.address))
        await made.ready()
        await session(made, '/parley/ws?v=1', () => made)
        expect(addresses).toEqual([''])
      })
      expect(thrown).toEqual([])
    }
  })
})

/**
 * `made` ready, with one injected session whose event waits in a middleware (the close waits for
 * it), and its close begun: the upgrade to inject again, and what lets the event go on.
 */
async function closeBehindHeldEvent(made: FastifyInstance) {
  let release: (() => void) | undefined
  made.parley.on('connection', (socket) => {
    socket.use(() => new Promise<void>((resolve) => (release = resolve)))
    socket.on('hold', () => {})
  })
  await made.ready()
  const upgrade = () =>
    made.injectWS('/parley/ws?v=1', { headers: { 'sec-websocket-protocol': WS_SUBPROTOCOL } })
  const first = await within(upgrade(), 2000, 'the first injected upgrade')
  const packets = packetsOf(first)
  first.send('[8,{}]')
  await until(() => packets.some((p) => p.type === PacketType.OPEN), 2000, 'OPEN')
  first.send(encodeText({ type: PacketType.EVENT, seq: 1, name: 'hold', args: [], ackId: 0 }))
  await until(() => release !== undefined, 2000, 'the event to wait in the middleware')
  const closing = made.close()
  await until(() => made.parley.closing, 2000, 'the close to begin')
  return { first, upgrade, closing, release: () => release?.() }
}

describe('app.injectWS while the app closes', () => {
  it("gets Parley's coded answers, not Fastify's bare 503: a HELLO refused with PARLEY_SERVER_SHUTTING_DOWN", async () => {
    const thrown = await unheard(async () => {
      const made = Fastify()
      app = made
      await made.register(parley, {})
      const { first, upgrade, closing, release } = await closeBehindHeldEvent(made)
      const late = await within(upgrade(), 2000, 'the injected upgrade during the close')
      const answered = packetsOf(late)
      late.send('[8,{}]')
      await until(() => answered.length > 0, 2000, "the HELLO's answer")
      expect(answered[0]).toMatchObject({ type: PacketType.ERROR, code: 'PARLEY_SERVER_SHUTTING_DOWN' })
      release()
      app = undefined
      // Gone, they leave the close nothing to wait for (the answers to its close frames).
      first.terminate()
      late.terminate()
      await within(closing, 5000, 'the close')
    })
    expect(thrown).toEqual([])
  })

  it("is refused 503 with the application's @fastify/websocket, whose close came first", async () => {
    const thrown = await unheard(async () => {
      const made = Fastify()
      app = made
      await made.register(websocket)
      await made.register(parley, {})
      const { first, upgrade, closing, release } = await closeBehindHeldEvent(made)
      const late = await upgrade().then(
        () => 'opened',
        (err: Error) => err.message,
      )
      release()
      app = undefined
      first.terminate()
      await within(closing, 5000, 'the close')
      expect(late).toBe('Unexpected server response: 503')
    })
    expect(thrown).toEqual([])
  })
})
