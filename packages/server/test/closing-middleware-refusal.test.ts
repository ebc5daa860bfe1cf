// A handshake middleware (`app.parley.use`) still running as the node begins to close (a
// deploy's `app.close()`, or `app.parley.drain()`) is not waited for: the client is answered at
// that moment as any handshake at close, 503 PARLEY_SERVER_SHUTTING_DOWN (over WebSocket the
// ERROR of that code), and tries a live node. Not PARLEY_HANDSHAKE_TIMEOUT at the middleware's
// bound, which has the client wait out its backoff and blames the application, nor 403
// PARLEY_REFUSED for a throw that may be the close itself (its database pool closed by a close
// hook, say), after which it would stop for good. A handshake and a resume alike, on every
// transport, whatever the middleware does after (throws, disconnects the socket, or never
// settles), and a takeover of a session claimed from another node's handoff; a refusal settled
// before the close began stays a refusal.
//
// The close is held where the application's own hooks hold it: a preClose hook added ahead of
// Parley's, which runs after the close's first moment (when the node begins to refuse new
// sessions) and before Parley's part of it.

import { connect, type Socket } from '@parley/client'
import { PacketType, type ParleyError, type TransportName } from '@parley/protocol'
import parley, { type ServerSocket } from '@parley/server'
import Fastify, { type FastifyInstance } from 'fastify'
import { describe, expect, it, onTestFinished } from 'vitest'
import { Cluster } from './cluster-adapter.js'
import { type Gate, gate } from './gate.js'
import { closeApp, startServer, until, within } from './helpers.js'
import { type RawClient, Refused, rawConnect } from './raw-client.js'
import { restartableServer, TRANSPORTS } from './restartable-server.js'

/** The client's own bound: the middleware held meanwhile must not reach it. */
const CONNECT_TIMEOUT = 10_000

/**
 * The handshakeTimeout of a server whose middleware never settles: the close begins well within
 * it, and the held close outlasts it, so that a run still waited for then gets its answer.
 */
const BOUND = 2000

/**
 * How the test's middleware ends a client it holds once `cue` opens; 'never settles' holds it for
 * good (a database call without a timeout of its own), `cue` or not.
 */
type Ending = 'throws' | 'disconnects' | 'never settles'

/**
 * A middleware holding a client whose auth says `hold` until `cue` opens, then ending it;
 * `settled` is told as it settles.
 */
function holdingMiddleware(cue: Gate, ending: Ending = 'throws', settled = () => {}) {
  return async (socket: ServerSocket) => {
    if (!(socket.handshake.auth as { hold?: boolean } | undefined)?.hold) return
    await cue.pass()
    if (ending === 'never settles') await new Promise<never>(() => {})
    try {
      // What a middleware meets once a close hook has closed what it reads.
      if (ending === 'throws') throw new Error('the database pool is closed')
      socket.disconnect()
    } finally {
      settled()
    }
  }
}

/**
 * A server whose middleware holds a client until `cue` opens; its close is held by `hold`, a
 * preClose hook of the application's ahead of Parley's. Closed, and its raw clients, when the
 * test ends. Its handshakeTimeout: `BOUND` for a middleware that never settles, unless
 * `handshakeTimeout` says otherwise.
 */
async function heldServer(ending: Ending = 'throws', handshakeTimeout?: number) {
  const cue = gate()
  const hold = gate()
  const logs: { level: number; msg: string }[] = []
  const logger = { level: 'debug', stream: { write: (line: string) => void logs.push(JSON.parse(line)) } }
  const app = Fastify({ forceCloseConnections: true, logger })
  app.addHook('preClose', () => hold.pass())
  // Past the body's parsing: a handshake goes on from here without another wait.
  let handled = 0
  app.addHook('preHandler', async () => {
    handled++
  })
  const bound = handshakeTimeout ?? (ending === 'never settles' ? BOUND : undefined)
  await app.register(parley, { path: '/parley', ...(bound !== undefined && { handshakeTimeout: bound }) })
  let settled = 0
  app.parley.use(holdingMiddleware(cue, ending, () => settled++))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const clients: RawClient[] = []
  let closing: Promise<unknown> | undefined
  onTestFinished(async () => {
    for (const client of clients.splice(0)) client.close()
    cue.open()
    hold.open()
    await (closing ?? app.close())
  })
  return {
    app,
    logs,
    base: `http://127.0.0.1:${port}/parley`,
    cue,
    clients,
    /** How many runs of the middleware have settled. */
    settled: () => settled,
    /** How many requests have reached their handler. */
    handled: () => handled,
    /** Begins the close, and waits until it is held ahead of Parley's part: the node is closing. */
    async beginClose() {
      closing = app.close()
      await until(() => hold.reached(), 5000, "the close to reach the application's hook")
    },
  }
}

/** What `attempt` came to: the raw client's refusal, or 'opened'. */
function outcome(attempt: Promise<RawClient>, clients: RawClient[]): Promise<unknown> {
  return attempt.then(
    (client) => {
      clients.push(client)
      return 'opened'
    },
    (err: unknown) => err,
  )
}

/** What a refusal with `code` looks like to the raw client: over HTTP with `status`. */
function refusedWith(transport: TransportName, code: string, status: number) {
  return { code, status: transport === 'websocket' ? undefined : status }
}

const SHUTTING_DOWN = 'PARLEY_SERVER_SHUTTING_DOWN'

/** The answer of a node that began to close: a refusal its client tries again on, 503 over HTTP. */
function expectShuttingDown(refused: unknown, transport: TransportName) {
  expect(refused).toBeInstanceOf(Refused)
  expect(refused).toMatchObject(refusedWith(transport, SHUTTING_DOWN, 503))
}

/** A session opened on `transport`, its transport then gone: a resume of it is what comes next. */
async function sessionToResume(transport: TransportName, server: Awaited<ReturnType<typeof heldServer>>) {
  const first = await rawConnect(transport, server.base)
  const [socket] = [...server.app.parley.sockets.values()]
  first.close()
  // Over SSE and polling the session keeps the transport until its heartbeat gives up on it: the
  // resume takes the session from it.
  if (transport === 'websocket') await until(() => socket!.transport === null, 2000, 'the transport to go')
  return { sid: first.sid, socket: socket! }
}

/**
 * A handshake (or a resume: `sid`) on `transport`, once `server`'s middleware holds it: what it
 * will come to (see `outcome`), in an object, so that returning it does not wait for it.
 */
async function heldBy(
  server: Awaited<ReturnType<typeof heldServer>>,
  transport: TransportName,
  what: 'handshake' | 'resume',
  resume?: { sid: string },
) {
  const answer = outcome(
    rawConnect(transport, server.base, { ...(resume && { sid: resume.sid, ack: 0 }), auth: { hold: true } }),
    server.clients,
  )
  await until(() => server.cue.reached(), 5000, `the middleware to hold the ${what}`)
  return { answer }
}

/**
 * What `server` answers a handshake (or a resume: `sid`) on `transport` whose middleware holds it
 * until the close began, then settles.
 */
async function answeredAtClose(
  transport: TransportName,
  server: Awaited<ReturnType<typeof heldServer>>,
  what: 'handshake' | 'resume',
  resume?: { sid: string },
) {
  const { answer } = await heldBy(server, transport, what, resume)
  await server.beginClose()
  server.cue.open()
  return within(answer, 5000, `the answer to the ${what}`)
}

describe.each(TRANSPORTS)(
  'a handshake middleware running as the node begins to close, over %s',
  (transport) => {
    it('answers a new session PARLEY_SERVER_SHUTTING_DOWN, and logs no failure, when it throws after', async () => {
      const server = await heldServer()
      const refused = await answeredAtClose(transport, server, 'handshake')
      expectShuttingDown(refused, transport)
      expect(server.app.parley.sockets.size).toBe(0)
      // A failure every deploy meets, after its client got its answer: no refusal, nothing logged
      // (once the run has read the throw, a turn of the event loop after it).
      await until(() => server.settled() === 1, 5000, 'the middleware to throw')
      await new Promise((resolve) => setImmediate(resolve))
      expect(server.logs.filter(({ msg }) => msg.includes('handshake middleware'))).toEqual([])
    })

    it('answers a resume PARLEY_SERVER_SHUTTING_DOWN when it throws after', async () => {
      const server = await heldServer()
      const { sid, socket } = await sessionToResume(transport, server)
      const refused = await answeredAtClose(transport, server, 'resume', { sid })
      expectShuttingDown(refused, transport)
      // Left as it was, for the close to end or hand off.
      expect(socket.connected).toBe(true)
    })

    it('answers a new session PARLEY_SERVER_SHUTTING_DOWN when it disconnects the socket after', async () => {
      const server = await heldServer('disconnects')
      const refused = await answeredAtClose(transport, server, 'handshake')
      expectShuttingDown(refused, transport)
    })

    // The close is held ahead of Parley's part for good here: waited for, the run would be answered
    // at its handshakeTimeout, PARLEY_HANDSHAKE_TIMEOUT, as on a node that is not closing.
    it.each(['handshake', 'resume'] as const)(
      'answers a %s PARLEY_SERVER_SHUTTING_DOWN at once, not PARLEY_HANDSHAKE_TIMEOUT at its bound, when it never settles',
      async (what) => {
        const server = await heldServer('never settles')
        const resume = what === 'resume' ? await sessionToResume(transport, server) : undefined
        const { answer } = await heldBy(server, transport, what, resume)
        await server.beginClose()
        expectShuttingDown(await within(answer, 5000, `the answer to the ${what}`), transport)
        // No run reached its bound: none is counted as the application's slow middleware.
        expect(server.logs.filter(({ msg }) => msg.includes('did not settle'))).toEqual([])
        if (resume) expect(resume.socket.connected).toBe(true)
      },
    )

    it('still answers PARLEY_REFUSED to a throw settled before the close began', async () => {
      const server = await heldServer()
      const { answer } = await heldBy(server, transport, 'handshake')
      server.cue.open()
      const refused = await within(answer, 5000, 'the answer to the handshake')
      expect(refused).toBeInstanceOf(Refused)
      expect(refused).toMatchObject({
        ...refusedWith(transport, 'PARLEY_REFUSED', 403),
        message: 'PARLEY_REFUSED: refused by middleware',
      })
      await server.beginClose()
    })
  },
)

describe('a resume waiting for its turn as the node begins to close', () => {
  // Its turn would come once the resume ahead of it ends, at that one's handshakeTimeout (its
  // middleware never settles), a bound past the test's waits: only the close can answer it in time.
  it('is answered PARLEY_SERVER_SHUTTING_DOWN at once', async () => {
    const server = await heldServer('never settles', 10_000)
    const resume = await sessionToResume('polling', server)
    await heldBy(server, 'polling', 'resume', resume)
    const counted = server.handled()
    const second = outcome(rawConnect('polling', server.base, { sid: resume.sid, ack: 0 }), server.clients)
    await until(() => server.handled() > counted, 5000, 'the second resume')
    await new Promise((resolve) => setImmediate(resolve))
    await server.beginClose()
    expectShuttingDown(await within(second, 5000, 'the answer to the second resume'), 'polling')
    expect(resume.socket.connected).toBe(true)
  })
})

describe('a handshake middleware refusing during app.parley.drain()', () => {
  it('answers PARLEY_SERVER_SHUTTING_DOWN to a throw settled once the drain began', async () => {
    const server = await heldServer()
    const { answer } = await heldBy(server, 'polling', 'handshake')
    await within(server.app.parley.drain(), 5000, 'the drain')
    server.cue.open()
    expectShuttingDown(await within(answer, 5000, 'the answer to the handshake'), 'polling')
  })
})

describe('a handshake middleware refusing a takeover', () => {
  /**
   * Node a drains, its polling client's session stored for another node to claim and the client
   * told so; the client's resume reaches b, which claims the session and holds its takeover in
   * the middleware until `cue` opens. Everything is closed when the test ends.
   */
  async function takeoverHeldOnB() {
    const cluster = new Cluster({ handoff: true })
    const cue = gate()
    const handoff = { timeout: 2000, retrySpread: 0 }
    const a = await startServer({ adapter: cluster.adapter('a'), handoff })
    const b = await startServer({ adapter: cluster.adapter('b'), handoff }, (app) => {
      app.parley.use(holdingMiddleware(cue))
    })
    const clients: RawClient[] = []
    onTestFinished(async () => {
      for (const client of clients.splice(0)) client.close()
      cue.open()
      await Promise.all([closeApp(a.app), closeApp(b.app)])
    })
    const first = await rawConnect('polling', a.base)
    clients.push(first)
    const draining = a.app.parley.drain()
    await until(
      () => first.received.some(({ type }) => type === PacketType.CLOSE),
      5000,
      'the CLOSE of the handoff',
    )
    const answer = outcome(
      rawConnect('polling', b.base, { sid: first.sid, ack: 0, auth: { hold: true } }),
      clients,
    )
    await until(() => cue.reached(), 5000, "b's middleware to hold the takeover")
    return { cluster, cue, handoff, b, clients, first, draining, answer }
  }
  it('answers PARLEY_SERVER_SHUTTING_DOWN as the node taking the session over begins to close, and hands the session on, whatever its middleware does after', async () => {
    const { cluster, cue, handoff, b, clients, first, draining, answer } = await takeoverHeldOnB()
    expect(cluster.handoffs.get(first.sid)?.claimedBy).toBe('b')
    // b begins to close too, its middleware still running: neither b's drain, which waits for the
    // takeovers under way, nor the client waits for it (within b's handshakeTimeout, 10 s, both
    // would have, and the claim been given back then).
    void b.app.parley.drain()
    const refused = await within(answer, 5000, 'the answer to the resume')
    expectShuttingDown(refused, 'polling')
    // What the middleware met then may be the close itself: a throw now is no verdict either.
    cue.open()
    await within(draining, 5000, "a's drain")
    // b took the session over without its client, and its drain handed it on, where the client's
    // next try, on a live node, resumes it.
    await until(
      () =>
        cluster.handoffs.get(first.sid)?.owner === 'b' && cluster.handoffs.get(first.sid)?.stored === true,
      5000,
      "b's drain to hand the session on",
    )
    const c = await startServer({ adapter: cluster.adapter('c'), handoff })
    onTestFinished(() => closeApp(c.app))
    const next = await rawConnect('polling', c.base, { sid: first.sid, ack: 0 })
    clients.push(next)
    expect(next.open).toMatchObject({ recovered: true })
  })

  it('still gives the claim back on a refusal settled before the node taking the session over began to close', async () => {
    const { cluster, cue, b, first, draining, answer } = await takeoverHeldOnB()
    cue.open()
    const refused = await within(answer, 5000, 'the answer to the resume')
    expect(refused).toMatchObject(refusedWith('polling', 'PARLEY_REFUSED', 403))
    await within(draining, 5000, "a's drain")
    // Given back: the handoff is over, and b holds nothing of the session.
    expect(cluster.handoffs.has(first.sid)).toBe(false)
    expect(b.app.parley.socketsCount).toBe(0)
  })
})

describe('a Parley client whose handshake middleware is running as the node closes', () => {
  // Told PARLEY_HANDSHAKE_TIMEOUT (a slow middleware), the client would end its attempt and wait
  // out its backoff before it tried again; PARLEY_REFUSED (a throw) would stop it for good.
  it.each(['throws', 'never settles'] as const)(
    'tries again at once rather than stopping or waiting, and connects to the instance after it, on every transport (the middleware %s)',
    async (ending) => {
      const shared = await restartableServer(true)
      const cue = gate()
      const hold = gate()
      let runs = 0
      const old = await shared.make(
        'old',
        undefined,
        (app: FastifyInstance) =>
          app.parley.use(async () => {
            runs++
            await cue.pass()
            if (ending === 'never settles') await new Promise<never>(() => {})
            throw new Error('the database pool is closed')
          }),
        ending === 'never settles' ? { handshakeTimeout: BOUND } : {},
        (app) => app.addHook('preClose', () => hold.pass()),
      )
      shared.serve(old)
      const clients: Socket[] = []
      const firstErrors = new Map<string, string>()
      for (const transport of TRANSPORTS) {
        const client = connect(`http://127.0.0.1:${shared.port}/a`, {
          transports: [transport],
          connectTimeout: CONNECT_TIMEOUT,
          reconnectionDelay: 50,
          reconnectionDelayMax: 200,
        })
        shared.clients.push(client)
        clients.push(client)
        client.once('connect_error', (error: ParleyError<string>, willRetry: boolean) =>
          firstErrors.set(transport, willRetry ? `tries again: ${error.code}` : `given up: ${error.code}`),
        )
      }
      await until(() => runs === TRANSPORTS.length, 5000, 'the middleware to hold every client')
      const closing = old.close()
      onTestFinished(async () => {
        cue.open()
        hold.open()
        await closing
      })
      await until(() => hold.reached(), 5000, "the close to reach the application's hook")
      cue.open()
      await until(() => firstErrors.size === TRANSPORTS.length, 5000, 'every client to end its first attempt')
      const again = `tries again: ${SHUTTING_DOWN}`
      expect(Object.fromEntries(firstErrors)).toEqual({ websocket: again, sse: again, polling: again })

      hold.open()
      await within(closing, 5000, 'the close to end')
      const next = await shared.make('next')
      shared.serve(next)
      for (const [index, client] of clients.entries()) {
        await until(() => client.connected, 5000, `the ${TRANSPORTS[index]} client to connect`)
        expect(await within(client.emitWithAck('where' as never), 5000, 'the answer to where')).toBe('next')
      }
    },
    40_000,
  )
})
