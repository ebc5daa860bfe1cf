// A client that gives up on its handshake while a handshake middleware (`app.parley.use`) still
// works on it, the middleware settling within handshakeTimeout after all: the chain stops there,
// no session opens, no `connection` fires and the rooms the middleware joined are left. An
// application's later steps (a database write after the auth, say) do not run for a client
// that is gone.

import type { Socket } from 'node:net'
import type { TransportName } from '@parley/protocol'
import type { ServerSocket } from '@parley/server'
import type { FastifyInstance } from 'fastify'
import { describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { closedAfterEach } from './closed-after-each.js'
import { startServer, until, within } from './helpers.js'
import { rawConnect } from './raw-client.js'

const TRANSPORTS: TransportName[] = ['websocket', 'sse', 'polling']
/** Well above what the test takes: the middleware settles within it. */
const BOUND = 10_000
const WS_SUBPROTOCOL = 'parley.v1'

const opened = closedAfterEach()

interface LogLine {
  level: number
  msg: string
}

/** A gate a middleware waits at, and its release. */
function gate() {
  let open = () => {}
  const shut = new Promise<void>((resolve) => {
    open = resolve
  })
  return { shut, open }
}

/**
 * Watches the connections of `app`'s requests: `left()` waits until the last request's
 * connection is closed on the server's side (the client left, and the server heard it).
 */
function watchConnections(app: FastifyInstance) {
  const closed = new WeakSet<Socket>()
  let last: Socket | undefined
  app.addHook('onRequest', async (request) => {
    const socket = request.raw.socket
    if (last !== socket) socket.once('close', () => closed.add(socket))
    last = socket
  })
  return async (what: string) => {
    await until(() => last !== undefined && closed.has(last), 3000, what)
    // The server's own listeners on that close have run.
    await new Promise((resolve) => setImmediate(resolve))
  }
}

/**
 * Sends a HELLO over `transport` and leaves once `reached` says the middleware holds it: the
 * WebSocket closed, the handshake POST aborted.
 */
async function helloThenLeave(
  transport: TransportName,
  base: string,
  hello: object,
  reached: Promise<void>,
): Promise<void> {
  const text = JSON.stringify([8, hello])
  if (transport === 'websocket') {
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/ws?v=1`, WS_SUBPROTOCOL)
    await within(new Promise((resolve) => ws.once('open', resolve)), 3000, 'the upgrade')
    ws.send(text)
    await within(reached, 3000, 'the middleware to hold the handshake')
    ws.terminate()
    return
  }
  const aborted = new AbortController()
  const post = fetch(`${base}/${transport === 'sse' ? 'sse' : 'poll'}?v=1`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain' },
    body: text,
    signal: aborted.signal,
  }).catch(() => undefined)
  await within(reached, 3000, 'the middleware to hold the handshake')
  aborted.abort()
  await post
}

describe.each(TRANSPORTS)('a client that leaves while a handshake middleware runs, over %s', (transport) => {
  it('runs no middleware after it, opens no session and keeps no room once it settles', async () => {
    const held = gate()
    const reached = gate()
    let left = async (_what: string) => {}
    let joined: ServerSocket | undefined
    let after = 0
    let connected = 0
    const logs: LogLine[] = []
    const logger = { level: 'warn', stream: { write: (line: string) => void logs.push(JSON.parse(line)) } }
    opened.started = await startServer(
      { handshakeTimeout: BOUND },
      (app) => {
        left = watchConnections(app)
        app.parley.use(async (socket) => {
          await socket.join('early')
          joined = socket
          reached.open()
          await held.shut
        })
        app.parley.use(async () => {
          after++
        })
        app.parley.on('connection', () => connected++)
      },
      { logger },
    )
    const started = opened.started
    await helloThenLeave(transport, started.base, {}, reached.shut)
    await left('the server to see the client leave')
    held.open()
    await until(() => joined !== undefined && !joined.connected, 3000, 'the handshake to end')
    // A turn for what would follow: the next middleware, the registration, `connection`.
    await new Promise((resolve) => setImmediate(resolve))
    expect({ after, connected, sockets: started.app.parley.sockets.size }).toEqual({
      after: 0,
      connected: 0,
      sockets: 0,
    })
    expect(started.app.parley.adapter.socketRooms(joined!.id)).toBeUndefined()
    expect(logs).toEqual([])
  })

  it('logs no failure when the middleware rejects once its client has left', async () => {
    const held = gate()
    const reached = gate()
    let left = async (_what: string) => {}
    let settled = false
    const logs: LogLine[] = []
    const logger = { level: 'info', stream: { write: (line: string) => void logs.push(JSON.parse(line)) } }
    opened.started = await startServer(
      { handshakeTimeout: BOUND },
      (app) => {
        left = watchConnections(app)
        app.parley.use(async () => {
          reached.open()
          await held.shut
          settled = true
          // A library's error, as a database driver's that lost its connection.
          throw new Error('connection reset by the database')
        })
      },
      { logger, disableRequestLogging: true },
    )
    const started = opened.started
    await helloThenLeave(transport, started.base, {}, reached.shut)
    await left('the server to see the client leave')
    held.open()
    await until(() => settled, 3000, 'the middleware to settle')
    await new Promise((resolve) => setImmediate(resolve))
    expect(logs.filter(({ msg }) => msg.includes('middleware'))).toEqual([])
  })

  it('runs no middleware after it for a resume whose client left, and leaves its session as it was', async () => {
    let hold: ReturnType<typeof gate> | undefined
    const reached = gate()
    let left = async (_what: string) => {}
    let settled = false
    let after = 0
    opened.started = await startServer({ handshakeTimeout: BOUND }, (app) => {
      left = watchConnections(app)
      app.parley.use(async () => {
        if (!hold) return
        reached.open()
        await hold.shut
        settled = true
      })
      app.parley.use(async () => {
        after++
      })
    })
    const started = opened.started
    const first = await rawConnect(transport, started.base)
    const [socket] = [...started.app.parley.sockets.values()]
    first.close()
    if (transport === 'websocket') await until(() => socket!.transport === null, 3000, 'the transport to go')
    expect(after).toBe(1)
    const held = gate()
    hold = held
    await helloThenLeave(transport, started.base, { sid: first.open.sid, ack: 0 }, reached.shut)
    await left('the server to see the client leave')
    hold = undefined
    held.open()
    await until(() => settled, 3000, 'the middleware to settle')
    await new Promise((resolve) => setImmediate(resolve))
    expect(after).toBe(1)
    expect(socket!.connected).toBe(true)
    // Its turn over, the next resume of the session takes it.
    const again = await rawConnect(transport, started.base, { sid: first.open.sid, ack: 0 })
    opened.clients.push(again)
    expect(again.open).toMatchObject({ sid: first.open.sid, recovered: true })
    expect(after).toBe(2)
  })
})
