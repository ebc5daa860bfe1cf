// A handshake middleware (`app.parley.use`) that does not settle, a database call without a
// timeout of its own, say: the server's handshakeTimeout bounds it, the client is told so and
// tries again, the server says so in its log, and a middleware that settles after the bound
// opens nothing.
import { connect } from '@parley/client'
import type { ParleyError, TransportName } from '@parley/protocol'
import type { ServerSocket } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { closedAfterEach } from './closed-after-each.js'
import { startServer, until, within } from './helpers.js'
import { Refused, rawConnect } from './raw-client.js'

const TRANSPORTS: TransportName[] = ['websocket', 'sse', 'polling']
/** The server's handshakeTimeout here: well under the client's connectTimeout below. */
const BOUND = 300
/** The client's own bound: it must not be what ends the attempt. */
const CONNECT_TIMEOUT = 10_000
const TIMED_OUT = `the handshake middleware did not settle within ${BOUND} ms`

const opened = closedAfterEach()

interface LogLine {
  level: number
  msg: string
  code?: string
  handshakeTimeout?: number
  count?: number
  total?: number
}

/** A server whose handshake middleware is `middleware`, its log lines in `logs`. */
async function serverWith(...middleware: ((socket: ServerSocket) => Promise<void>)[]) {
  const logs: LogLine[] = []
  const logger = { level: 'warn', stream: { write: (line: string) => void logs.push(JSON.parse(line)) } }
  opened.started = await startServer(
    { handshakeTimeout: BOUND },
    (app) => {
      for (const each of middleware) app.parley.use(each)
    },
    { logger },
  )
  return { started: opened.started, logs }
}

/** A real client on `transport` alone; its first `connect_error`, and whether it will retry. */
function firstError(base: string, transport: TransportName) {
  const client = connect(base, { transports: [transport], connectTimeout: CONNECT_TIMEOUT })
  opened.parleyClients.push(client)
  const error = new Promise<[ParleyError<string>, boolean]>((resolve) =>
    client.once('connect_error', (err, willRetry) => resolve([err, willRetry])),
  )
  return within(error, CONNECT_TIMEOUT / 2, 'the server to answer the handshake')
}

const about = (logs: LogLine[]) => logs.filter(({ msg }) => msg.includes('did not settle'))

describe.each(TRANSPORTS)('a handshake middleware that never settles, over %s', (transport) => {
  it('is answered PARLEY_HANDSHAKE_TIMEOUT at handshakeTimeout, which the client tries again, logged once per burst', async () => {
    let runs = 0
    const { started, logs } = await serverWith(async () => {
      runs++
      await new Promise(() => {})
    })
    const [error, willRetry] = await firstError(started.base, transport)
    expect(error).toMatchObject({ code: 'PARLEY_HANDSHAKE_TIMEOUT', message: TIMED_OUT })
    expect(willRetry).toBe(true)
    // Its next attempt met the same middleware: counted on the burst's line, not a line of its own.
    await until(() => runs >= 2, 5000, 'the client to try again')
    await until(() => about(logs).length > 0, 1000, 'the warning')
    expect(about(logs)).toEqual([
      {
        level: 40,
        msg: `parley: handshake middleware did not settle within handshakeTimeout for 1 client(s) since the last such line; each was answered PARLEY_HANDSHAKE_TIMEOUT and tries again, and what the middleware does after that is ignored`,
        code: 'PARLEY_HANDSHAKE_TIMEOUT',
        handshakeTimeout: BOUND,
        count: 1,
        total: 1,
        time: expect.any(Number),
        pid: expect.any(Number),
        hostname: expect.any(String),
      },
    ])
    expect(started.app.parley.sockets.size).toBe(0)
  })

  it('opens no session, runs no middleware after it and keeps no room when it settles after the bound', async () => {
    let release = () => {}
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    let joined: ServerSocket | undefined
    let runs = 0
    let after = 0
    let connections = 0
    const { started, logs } = await serverWith(
      async (socket) => {
        // The first run alone settles, after its bound. The client's tries again never settle:
        // released, one could go on before the server has seen its client leave.
        await (runs++ === 0 ? gate : new Promise(() => {}))
        await socket.join('late')
        joined = socket
      },
      async () => {
        after++
      },
    )
    started.app.parley.on('connection', () => connections++)
    const [error] = await firstError(started.base, transport)
    expect(error.code).toBe('PARLEY_HANDSHAKE_TIMEOUT')
    // Released only once the server's bound answered the first run (its line is written then): a
    // client's error may be its own deadline's, and a run released within the bound goes on.
    await until(() => about(logs).length > 0, 5000, "the first run's bound")
    release()
    await until(() => joined !== undefined, 1000, 'the middleware to go on')
    // A turn for what would follow it: the next middleware, the session's registration.
    await new Promise((resolve) => setImmediate(resolve))
    expect({ after, connections, sockets: started.app.parley.sockets.size }).toEqual({
      after: 0,
      connections: 0,
      sockets: 0,
    })
    expect(joined!.connected).toBe(false)
    expect(started.app.parley.adapter.socketRooms(joined!.id)).toBeUndefined()
  })

  it('refuses a resume at the bound and leaves its session as it was, running no middleware after it later', async () => {
    let hang = false
    let release = () => {}
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    let settled = false
    let after = 0
    const { started } = await serverWith(
      async () => {
        if (!hang) return
        await gate
        settled = true
      },
      async () => {
        after++
      },
    )
    const first = await rawConnect(transport, started.base)
    const [socket] = [...started.app.parley.sockets.values()]
    first.close()
    // Over SSE and polling the session keeps the transport until its heartbeat gives up on it:
    // the resume takes the session from it.
    if (transport === 'websocket') await until(() => socket!.transport === null, 2000, 'the transport to go')
    hang = true
    const refused = await rawConnect(transport, started.base, { sid: first.sid, ack: 0 }).catch((e) => e)
    expect(refused).toBeInstanceOf(Refused)
    expect(refused).toMatchObject({ code: 'PARLEY_HANDSHAKE_TIMEOUT' })
    release()
    await until(() => settled, 1000, 'the middleware to go on')
    await new Promise((resolve) => setImmediate(resolve))
    // The second middleware ran for the handshake alone, not for the resume answered already.
    expect(after).toBe(1)
    expect(socket!.connected).toBe(true)
    hang = false
    const again = await rawConnect(transport, started.base, { sid: first.sid, ack: 0 })
    opened.clients.push(again)
    expect(again.open).toMatchObject({ sid: first.sid, recovered: true })
  })
})

// A handshake POST the closing server would wait for, up to the bound; over WebSocket it ends
// the connection itself (close 1008, as any handshake refused at close), after the same coded
// answer.
describe.each(['sse', 'polling'] as const)(
  'a handshake middleware that never settles, over %s',
  (transport) => {
    it('is answered PARLEY_SERVER_SHUTTING_DOWN at once when the server closes meanwhile', async () => {
      let runs = 0
      // A bound past the test's waits, and Fastify's close waiting for the request under way.
      opened.started = await startServer(
        { handshakeTimeout: 10_000 },
        (app) => {
          app.parley.use(async () => {
            runs++
            await new Promise(() => {})
          })
        },
        { forceCloseConnections: false },
      )
      const own = opened.started
      const answer = rawConnect(transport, own.base).then(
        () => undefined,
        (err: unknown) => err,
      )
      await until(() => runs === 1, 2000, 'the middleware to run')
      await within(own.app.close(), 5000, 'the close')
      opened.started = undefined
      expect(await within(answer, 5000, 'the answer')).toMatchObject({ code: 'PARLEY_SERVER_SHUTTING_DOWN' })
    })
  },
)

describe('a handshake middleware that never settles, over websocket', () => {
  it('is answered PARLEY_SERVER_SHUTTING_DOWN before the close when the server closes meanwhile', async () => {
    let runs = 0
    opened.started = await startServer({ handshakeTimeout: 10_000 }, (app) => {
      app.parley.use(async () => {
        runs++
        await new Promise(() => {})
      })
    })
    const own = opened.started
    const client = connect(own.base, { transports: ['websocket'], connectTimeout: CONNECT_TIMEOUT })
    opened.parleyClients.push(client)
    // The client's reading of its transport's end: a coded shutdown, not a WebSocket broken.
    const lost = new Promise<ParleyError<string>>((resolve) =>
      client.once('transport_error', (_transport, err) => resolve(err)),
    )
    await until(() => runs === 1, 2000, 'the middleware to run')
    await within(own.app.close(), 5000, 'the close')
    opened.started = undefined
    expect(await within(lost, 5000, 'the end of the WebSocket')).toMatchObject({
      code: 'PARLEY_SERVER_SHUTTING_DOWN',
    })
  })
})
