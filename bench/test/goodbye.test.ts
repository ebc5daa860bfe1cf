// A bench client that leaves has ended its session by the time its close() resolves: its goodbye
// (a CLOSE in a POST over SSE and polling) reached the server before its connections went. A
// `--quick` run takes a kept server again only once its sessions are gone, and a session kept
// past its client would count in what the next reading sees.
import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { closeApp, startServer, within } from '../../packages/server/test/helpers.ts'
import { type ClientKind, createClient, type FetchKind, type Msg } from '../src/clients.ts'

let app: FastifyInstance | undefined

afterEach(async () => {
  await closeApp(app)
  app = undefined
})

/** A Parley server as the bench's (echo, acks), and the `echo` events it got. */
async function benchServer(): Promise<{ url: string; echoes: Msg[] }> {
  const echoes: Msg[] = []
  const started = await startServer({}, (a) => {
    a.parley.on('connection', (socket) => {
      socket.on('echo', (m: Msg) => {
        echoes.push(m)
        socket.emit('echo', m)
      })
      socket.on('ack', (m: Msg, ack?: (reply: Msg) => void) => ack?.(m))
    })
  })
  app = started.app
  return { url: started.base.replace(/\/parley$/, ''), echoes }
}

/** The clients whose goodbye travels in a POST, and the thin WebSocket one, which waits for its close. */
const cases: [ClientKind, FetchKind][] = [
  ['parley-sse', 'http'],
  ['parley-polling', 'http'],
  ['parley-sse', 'undici'],
  ['parley-polling', 'undici'],
  ['parley-thin-sse', 'http'],
  ['parley-thin-polling', 'http'],
  ['parley-thin-websocket', 'http'],
]

describe.each(cases)('%s (fetch %s)', (kind, fetch) => {
  it('has ended its session on the server when close() resolves', async () => {
    const { url } = await benchServer()
    const clients = [0, 1, 2].map(() => createClient(kind, { url, timeoutMs: 10_000, fetch }))
    await within(Promise.all(clients.map((c) => c.ready)), 10_000, 'the clients to connect')
    // A round trip first: the upstream POSTs have a connection of their own, kept alive.
    await within(
      Promise.all(clients.map((c, i) => c.request({ id: i, t: 0 }))),
      10_000,
      'the replies to the requests',
    )
    expect(app?.parley.socketsCount).toBe(3)
    await within(Promise.all(clients.map((c) => c.close())), 10_000, 'the clients to close')
    expect(app?.parley.socketsCount).toBe(0)
  }, 35_000)

  it('says goodbye after a POST still in flight, and the server ends the session', async () => {
    const { url, echoes } = await benchServer()
    const client = createClient(kind, { url, timeoutMs: 10_000, fetch })
    await within(client.ready, 10_000, 'the client to connect')
    client.emit('echo', { id: 1, t: 0 })
    // A turn of the event loop: the emit's POST is on its way (the thin client posts in the next).
    await new Promise((resolve) => setImmediate(resolve))
    await within(client.close(), 10_000, 'the client to close')
    expect(echoes.map((m) => m.id)).toEqual([1])
    expect(app?.parley.socketsCount).toBe(0)
  }, 25_000)
})
