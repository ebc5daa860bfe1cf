// A server whose handshake middleware did not settle within its handshakeTimeout answers
// PARLEY_HANDSHAKE_TIMEOUT and says that the middleware was slow, not the transport (`ackId` 1 in
// a WebSocket's ERROR, `"middleware": true` in an HTTP body). The client then tries the same
// transport again after its backoff, as after an `auth` of its own that did not settle, rather
// than step down and run the same middleware on a worse transport; with reconnection off, within
// the one attempt until connectTimeout has passed, each try again given only what is left of it,
// its auth included (a try again whose WebSocket upgrade goes unanswered steps down, within what
// is left; an auth that takes what is left fails the attempt, naming connectTimeout).
// A HELLO that reached the server late is a transport failure still (late-hello.test.ts).
//
// Each test has its own server, proxy and client, closed when that test finishes (`own` in
// helpers.ts: no shared afterEach). Most run one at a time: a 200 ms handshakeTimeout also bounds
// the WebSocket HELLO's way to the server, and a first try that must reach the server's 1500 ms
// answer within a 2000 ms connectTimeout has 500 ms for its HELLO, both of which servers and
// clients starting beside them in the same process held up on a loaded machine (seen: a server's
// start takes tens of ms of CPU); and two move `performance.now` on, the clock of every client in
// the process. The four whose first HELLO has a second or more to spare run side by side after
// them, in a process the others warmed.
import { ErrorCode, type JsonValue, type ParleyError, type TransportName } from '@parley/protocol'
import { describe, expect, it, vi } from 'vitest'
import { type FaultProxy, startFaultProxy } from '../../../test/support/fault-proxy.js'
import type { ClientOptions } from '../src/index.js'
import { next, own, parleyOf, until } from './helpers.js'
import { expectMiddlewareTimeout, tryAgainAfter } from './slow-middleware-connect.js'

type Own = ReturnType<typeof own>

/** The server's handshakeTimeout, in ms: the first run of the middleware outlives it. */
const BOUND = 200

/**
 * A server whose middleware notes each run's transport in `middleware.runs`; while
 * `middleware.slow` is set (at first as `slow` says), its next run clears it and waits `wait` ms:
 * a test sets it again where it wants the slow run.
 */
async function slowOnceServer(test: Own, wait: number, slow: boolean) {
  const middleware = { runs: [] as string[], slow }
  const server = await test.server(
    (app) => {
      parleyOf(app).use(async (socket) => {
        middleware.runs.push((socket.handshake as { transport?: string }).transport ?? '?')
        if (!middleware.slow) return
        middleware.slow = false
        await new Promise((resolve) => setTimeout(resolve, wait))
      })
    },
    { handshakeTimeout: BOUND },
  )
  return { server, middleware }
}

// One at a time: a 200 ms handshakeTimeout, or the clock moved on.

describe.each([[['websocket', 'sse', 'polling']], [['sse', 'polling']]] as TransportName[][][])(
  'a handshake middleware slow once, with the transports %j',
  (transports) => {
    it('is tried again on the same transport after the backoff, with no transport_error', async (context) => {
      const test = own(context)
      const { server, middleware } = await slowOnceServer(test, BOUND * 3, true)
      const socket = test.client(server.url, { transports, connectTimeout: 5000, reconnectionDelay: 50 })
      const said: string[] = []
      let first: ParleyError<string> | undefined
      socket.on('transport_error', (transport, error) => said.push(`${transport} ${error.code}`))
      socket.on('connect_error', (error: ParleyError<string>, willRetry: boolean) => {
        first ??= error
        said.push(`connect_error ${error.code} ${willRetry}`)
      })
      await next(socket, 'connect', 10_000)
      const [preferred] = transports
      expect(socket.transport).toBe(preferred)
      expect(middleware.runs).toEqual([preferred, preferred])
      expect(said).toEqual([`connect_error ${ErrorCode.HANDSHAKE_TIMEOUT} true`])
      expect(first?.details).toMatchObject({ middleware: true })
    })
  },
)

describe('a handshake middleware slow once on a resume', () => {
  it('resumes the session after the backoff, blaming no transport, back on the WebSocket', async (context) => {
    const test = own(context)
    // Just past the bound: the next resume waits for it to settle, within its own bound.
    const { server, middleware } = await slowOnceServer(test, BOUND + 100, false)
    const proxy = test.later(await startFaultProxy(server.port))
    const socket = test.client(proxy.url, { connectTimeout: 5000, reconnectionDelay: 50 })
    await next(socket, 'connect', 10_000)
    expect(socket.transport).toBe('websocket')
    const timeouts: string[] = []
    const slowMiddleware: ParleyError<string>[] = []
    socket.on('transport_error', (transport, error) => {
      if (error.code === ErrorCode.HANDSHAKE_TIMEOUT) timeouts.push(transport)
    })
    socket.on('connect_error', (error: ParleyError<string>) => {
      if (error.details?.middleware) slowMiddleware.push(error)
    })
    middleware.slow = true
    proxy.cut('websocket')
    // The cut, a resume the slow middleware failed (whichever transport it reached), then one
    // that went through.
    await until(() => !middleware.slow && socket.connected, 10_000, 'the resume after the slow one')
    expect(slowMiddleware).toHaveLength(1)
    expect(timeouts).toEqual([])
    expect(socket.recovered).toBe(true)
    expect(socket.transport).toBe('websocket')
  }, 25_000)
})

describe('a handshake middleware slow once on an upgrade probe', () => {
  it('probes the same transport again after the wait, rather than a worse one, and climbs to it', async (context) => {
    const test = own(context)
    // Just past the bound: the probe is answered PARLEY_HANDSHAKE_TIMEOUT, middleware slow.
    const { server, middleware } = await slowOnceServer(test, BOUND + 100, false)
    const proxy = test.later(await startFaultProxy(server.port))
    // Neither WebSocket nor SSE at first: the client settles on polling.
    proxy.ws = 'reject'
    proxy.sse = 'page'
    const socket = test.client(proxy.url, {
      connectTimeout: 5000,
      reconnectionDelay: 50,
      upgradeDelay: 300,
      upgradeDelayMax: 600,
    })
    await next(socket, 'connect', 10_000)
    expect(socket.transport).toBe('polling')
    const errors: ParleyError<string>[] = []
    socket.on('error', (error: ParleyError<string>) => errors.push(error))
    middleware.runs.length = 0
    middleware.slow = true
    proxy.ws = 'pass'
    proxy.sse = 'pass'
    await until(() => socket.transport === 'websocket', 10_000, 'the climb to WebSocket')
    // The slow run, then the WebSocket again: SSE, a step down from the probe, was never tried.
    expect(middleware.runs).toEqual(['websocket', 'websocket'])
    // Told once, as an auth that never settled is, naming the probe.
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatchObject({
      code: ErrorCode.HANDSHAKE_TIMEOUT,
      details: { middleware: true, transport: 'websocket' },
    })
    expect(socket.recovered).toBe(true)
  }, 25_000)
})

describe.each([[['websocket', 'sse', 'polling']], [['sse', 'polling']]] as TransportName[][][])(
  'a handshake middleware slow once, with reconnection off and the transports %j',
  (transports) => {
    it('leaves the one attempt its whole connectTimeout: tried again, it connects', async (context) => {
      const test = own(context)
      const { server, middleware } = await slowOnceServer(test, BOUND * 3, true)
      const socket = test.client(server.url, { transports, reconnection: false, connectTimeout: 5000 })
      const said: string[] = []
      socket.on('transport_error', (transport, error) => said.push(`${transport} ${error.code}`))
      socket.on('connect_error', (error: ParleyError<string>) => said.push(`connect_error ${error.code}`))
      // A first connect, not a reconnection: the pause between its tries is no attempt.
      socket.on('reconnect', (attempt) => said.push(`reconnect ${attempt}`))
      await next(socket, 'connect', 10_000)
      const [preferred] = transports
      expect(socket.transport).toBe(preferred)
      // The slow run the server gave up on, then the one that let the client in: nothing told.
      expect(middleware.runs).toEqual([preferred, preferred])
      expect(said).toEqual([])
    })
  },
)

describe('a handshake middleware slow to the end, with reconnection off', () => {
  it('fails once connectTimeout has passed, saying so, middleware slow', async (context) => {
    const test = own(context)
    const server = await test.server(
      (app) => parleyOf(app).use(() => new Promise((resolve) => setTimeout(resolve, BOUND * 3))),
      { handshakeTimeout: BOUND },
    )
    const connectTimeout = BOUND * 4
    const socket = test.client(server.url, { reconnection: false, connectTimeout })
    const errors: [ParleyError<string>, boolean][] = []
    const transportErrors: string[] = []
    socket.on('transport_error', (transport) => transportErrors.push(transport))
    socket.on('connect_error', (error: ParleyError<string>, willRetry: boolean) =>
      errors.push([error, willRetry]),
    )
    await until(() => errors.length > 0, 10_000, 'the connect_error')
    const [[error, willRetry]] = errors as [[ParleyError<string>, boolean]]
    expect(willRetry).toBe(false)
    expectMiddlewareTimeout(error, connectTimeout)
    // The same transport all along: the middleware, not the transport, was slow.
    expect(transportErrors).toEqual([])
    expect(socket.connected).toBe(false)
  })
})

describe.each([[['websocket', 'sse', 'polling']], [['sse', 'polling']]] as TransportName[][][])(
  'a handshake middleware slow to the end, with reconnection off and the transports %j',
  (transports) => {
    it('settles the connect at connectTimeout: a try again has only what is left of it', async (context) => {
      const test = own(context)
      // The server gives up on its middleware (which never settles) after 1500 ms; the client
      // tries again 100 ms later (the backoff's floor, no jitter), 400 ms before its bound. With
      // the whole connectTimeout, that try lasted until the server's answer, 1100 ms past it.
      const server = await test.server((app) => parleyOf(app).use(() => new Promise<void>(() => {})), {
        handshakeTimeout: 1500,
      })
      const connectTimeout = 2000
      const began = performance.now()
      const socket = test.client(server.url, {
        transports,
        connectTimeout,
        ...tryAgainAfter(100),
      })
      const transportErrors: string[] = []
      socket.on('transport_error', (transport) => transportErrors.push(transport))
      const [error, willRetry] = await next<[ParleyError<string>, boolean]>(socket, 'connect_error', 10_000)
      const took = performance.now() - began
      // Within the bound and a margin for a loaded machine's timers, well short of that 1100 ms;
      // not before it (a timer may fire a millisecond early).
      expect(took).toBeLessThan(connectTimeout + 500)
      expect(took).toBeGreaterThan(connectTimeout - 5)
      expect(willRetry).toBe(false)
      expectMiddlewareTimeout(error, connectTimeout)
      expect(transportErrors).toEqual([])
    })
  },
)

describe('a handshake middleware slow to the end, with reconnection off, an auth that leaves nothing of the bound', () => {
  it('fails the connect at its end, blaming the auth, with no WebSocket opened in no time', async (context) => {
    const test = own(context)
    const server = await test.server((app) => parleyOf(app).use(() => new Promise<void>(() => {})), {
      handshakeTimeout: 200,
    })
    const connectTimeout = 2000
    const now = performance.now.bind(performance)
    let auths = 0
    const socket = test.client(server.url, {
      connectTimeout,
      ...tryAgainAfter(50),
      // The try again's auth settles in the bound's last millisecond, a moment no timer can aim
      // at: as it settles, the clock moves on by the bound, as if the auth had taken all of it.
      auth: () => {
        if (++auths === 2) vi.spyOn(performance, 'now').mockImplementation(() => now() + connectTimeout)
        return { token: 't' }
      },
    })
    context.onTestFinished(() => {
      vi.restoreAllMocks()
    })
    const said: string[] = []
    socket.on('transport_error', (transport, error) => said.push(`${transport} ${error.message}`))
    const [error] = await next<[ParleyError<string>, boolean]>(socket, 'connect_error', 10_000)
    expect(auths).toBe(2)
    // Not a WebSocket given no time for its upgrade, blamed and stepped down from.
    expect(said).toEqual([])
    // The auth took what the slow middleware left: the last cause, told as an auth that outlasts
    // it is (one millisecond apart, the two are the same application's auth, too slow).
    expect(error.code).toBe(ErrorCode.HANDSHAKE_TIMEOUT)
    expect(error.message).toBe(`no auth within ${connectTimeout} ms`)
  })
})

describe('a handshake middleware slow to the end, with reconnection off, an auth value and no time left after it', () => {
  it('fails the connect with the slow middleware, not the auth, which took no time', async (context) => {
    const test = own(context)
    const server = await test.server((app) => parleyOf(app).use(() => new Promise<void>(() => {})), {
      handshakeTimeout: 200,
    })
    const connectTimeout = 2000
    const now = performance.now.bind(performance)
    let reads = 0
    const socket = test.client(server.url, {
      connectTimeout,
      ...tryAgainAfter(50),
      // A value, read as the HELLO is encoded (twice: the encoder's walk, then its text): on the
      // try again (the third read) the clock passes the bound's end there, as when that try
      // began in the bound's last millisecond (a pause's timer fires up to one early) and the
      // HELLO took that millisecond.
      auth: {
        toJSON() {
          if (++reads === 3) vi.spyOn(performance, 'now').mockImplementation(() => now() + connectTimeout)
          return { token: 't' }
        },
      } as unknown as JsonValue,
    })
    context.onTestFinished(() => {
      vi.restoreAllMocks()
    })
    const said: string[] = []
    socket.on('transport_error', (transport, error) => said.push(`${transport} ${error.message}`))
    const [error, willRetry] = await next<[ParleyError<string>, boolean]>(socket, 'connect_error', 10_000)
    expect(reads).toBe(4)
    expect(said).toEqual([])
    expect(willRetry).toBe(false)
    expectMiddlewareTimeout(error, connectTimeout)
  })
})

/**
 * A server behind a proxy: the middleware's first run (the first WebSocket's HELLO) has every
 * upgrade after it swallowed, and never settles (the server gives up on it at `bound`); each
 * later run waits `later` ms, then lets the client in.
 */
async function swallowingSetup(test: Own, bound: number, later: number) {
  const runs: string[] = []
  let proxy: FaultProxy | undefined
  const server = await test.server(
    (app) =>
      parleyOf(app).use(async (socket) => {
        runs.push((socket.handshake as { transport?: string }).transport ?? '?')
        if (runs.length === 1) {
          proxy!.ws = 'hang'
          return new Promise<void>(() => {})
        }
        await new Promise((resolve) => setTimeout(resolve, later))
      }),
    { handshakeTimeout: bound },
  )
  proxy = test.later(await startFaultProxy(server.port))
  return { proxy, runs }
}

/** Everything the client says until it connects or gives up. */
async function told(test: Own, url: string, connectTimeout: number, auth?: ClientOptions['auth']) {
  const socket = test.client(url, {
    connectTimeout,
    ...tryAgainAfter(50),
    ...(auth && { auth }),
  })
  const said: string[] = []
  socket.on('transport_error', (transport, error) => said.push(`${transport} ${error.message}`))
  socket.on('connect_error', (error: ParleyError<string>) =>
    said.push(`connect_error ${error.message} ${JSON.stringify(error.details ?? {})}`),
  )
  socket.on('connect', () => said.push(`connect ${socket.transport}`))
  await until(() => said.some((s) => /^connect/.test(s)), 10_000, 'connect or connect_error')
  return said
}

describe('a handshake middleware slow once, with reconnection off, behind a proxy that swallows WebSocket upgrades after the first', () => {
  it('steps down to SSE when the upgrade of the try again goes unanswered', async (context) => {
    const test = own(context)
    // The server answers the first HELLO, middleware slow, after 200 ms; the try again, 50 ms
    // later, waits a third of the rest for its upgrade (at least a second), which leaves SSE over
    // 1.5 s.
    const { proxy, runs } = await swallowingSetup(test, 200, 0)
    const said = await told(test, proxy.url, 3000)
    // The transport could not get through: told, and a step down, as on a first try. Counted as
    // the middleware slow again, the swallowed upgrade was tried until the bound, and the connect
    // failed blaming the middleware.
    expect(said).toEqual([
      // Its wait, a third of what was left, named by the bound it is a share of.
      expect.stringMatching(
        /^websocket no upgrade from ws:\/\/127\.0\.0\.1:\d+\/parley\/ws within \d+ ms \(its share of connectTimeout\)$/,
      ),
      'connect sse',
    ])
    expect(runs).toEqual(['websocket', 'sse'])
    expect(proxy.upgrades).toBe(2)
  })

  it('blames the middleware when the bound, not the transport, cut the upgrade of the try again short', async (context) => {
    const test = own(context)
    // The first HELLO answered after 200 ms, the try again 50 ms later: its upgrade, swallowed,
    // has only what is left of the 900 ms (an upgrade's own wait is at least 1000 ms), and runs
    // out with the bound. No transport is to blame, nor stepped down from.
    const { proxy, runs } = await swallowingSetup(test, 200, 0)
    const said = await told(test, proxy.url, 900)
    expect(said).toEqual(['connect_error no OPEN within 900 ms {"middleware":true}'])
    expect(runs).toEqual(['websocket'])
    expect(proxy.upgrades).toBe(2)
  })

  it("blames the step down's auth when it outlasts what is left, not the upgrade before it", async (context) => {
    const test = own(context)
    // The SSE try's auth (the third: the first WebSocket, its try again, then SSE) never settles.
    // The try again's upgrade waits a second of the 2750 ms left: SSE is tried with over 1.5 s.
    const { proxy, runs } = await swallowingSetup(test, 200, 0)
    let auths = 0
    const said = await told(test, proxy.url, 3000, () => (++auths === 3 ? new Promise<never>(() => {}) : {}))
    expect(said).toEqual([
      expect.stringMatching(/^websocket no upgrade from /),
      'connect_error no auth within 3000 ms {}',
    ])
    expect(runs).toEqual(['websocket'])
  })

  it("blames the step down's auth when it uses up what is left, not the upgrade before it", async (context) => {
    const test = own(context)
    // The SSE try's auth settles in the bound's last millisecond, a moment no timer can aim at:
    // as it settles, the clock moves on by the bound, as if the auth had taken all of it.
    const { proxy, runs } = await swallowingSetup(test, 200, 0)
    const now = performance.now.bind(performance)
    context.onTestFinished(() => {
      vi.restoreAllMocks()
    })
    let auths = 0
    const said = await told(test, proxy.url, 3000, () => {
      if (++auths === 3) vi.spyOn(performance, 'now').mockImplementation(() => now() + 3000)
      return {}
    })
    // The auth is the last cause, and what the application can mend: the upgrade, told by its
    // transport_error, is not what ended the connect.
    expect(said).toEqual([
      expect.stringMatching(/^websocket no upgrade from /),
      'connect_error no auth within 3000 ms {}',
    ])
    expect(runs).toEqual(['websocket'])
  })
})

describe('a handshake middleware slow to the end, with reconnection off, an auth that outlasts what is left of the bound', () => {
  it('fails naming connectTimeout, the bound the application set, not the rest', async (context) => {
    const test = own(context)
    const server = await test.server((app) => parleyOf(app).use(() => new Promise<void>(() => {})), {
      handshakeTimeout: 200,
    })
    const connectTimeout = 1500
    let auths = 0
    const socket = test.client(server.url, {
      connectTimeout,
      ...tryAgainAfter(50),
      // The try again's auth never settles: its bound is what is left, about 1250 ms.
      auth: () => (++auths === 1 ? { token: 't' } : new Promise<never>(() => {})),
    })
    const said: string[] = []
    socket.on('transport_error', (transport, error) => said.push(`${transport} ${error.message}`))
    const [error, willRetry] = await next<[ParleyError<string>, boolean]>(socket, 'connect_error', 10_000)
    expect(auths).toBe(2)
    expect(willRetry).toBe(false)
    expect(error.code).toBe(ErrorCode.HANDSHAKE_TIMEOUT)
    expect(error.message).toBe(`no auth within ${connectTimeout} ms`)
    expect(said).toEqual([])
  })
})

// Side by side, after those: a second or more to spare for the first HELLO, which the tests starting
// beside them cannot use up.

describe.concurrent.each([[['websocket', 'sse', 'polling']], [['sse', 'polling']]] as TransportName[][][])(
  'a handshake middleware slow to the end, with reconnection off, an auth slow on the try again and the transports %j',
  (transports) => {
    it('settles the connect at connectTimeout: the auth is taken off what is left of it', async (context) => {
      const test = own(context)
      // The server gives up on its middleware (which never settles) after 1500 ms; the client
      // tries again 100 ms later, 2400 ms before its bound, and its auth takes 1200 of them. With
      // the 2400 ms again for its OPEN, that try lasted until 1200 ms past the bound. The auth
      // ends 1200 ms before the bound, so that a loaded machine's late timers still leave the
      // failure to the OPEN's wait, not to the auth's.
      const server = await test.server((app) => parleyOf(app).use(() => new Promise<void>(() => {})), {
        handshakeTimeout: 1500,
      })
      const connectTimeout = 4000
      let auths = 0
      const began = performance.now()
      const socket = test.client(server.url, {
        transports,
        connectTimeout,
        ...tryAgainAfter(100),
        auth: async () => {
          if (++auths > 1) await new Promise((resolve) => setTimeout(resolve, 1200))
          return { token: 't' }
        },
      })
      const transportErrors: string[] = []
      socket.on('transport_error', (transport) => transportErrors.push(transport))
      const [error, willRetry] = await next<[ParleyError<string>, boolean]>(socket, 'connect_error', 10_000)
      const took = performance.now() - began
      // Within the bound and a margin for a loaded machine's timers, well short of that 1200 ms.
      expect(took).toBeLessThan(connectTimeout + 500)
      expect(auths).toBe(2)
      expect(willRetry).toBe(false)
      expectMiddlewareTimeout(error, connectTimeout)
      expect(transportErrors).toEqual([])
    })
  },
)

describe.concurrent('a handshake middleware slow once, with reconnection off, behind a proxy that swallows WebSocket upgrades after the first', () => {
  it('gives the step down only what is left of connectTimeout: it fails at the bound, middleware slow', async (context) => {
    const test = own(context)
    // The first HELLO answered after 2000 ms, the try again 50 ms later, its upgrade given up
    // after 1000 ms: SSE has at most 950 ms left, less than the 1500 ms its middleware takes,
    // which the whole connectTimeout would have let in (the server waits up to 2000 ms).
    const { proxy, runs } = await swallowingSetup(test, 2000, 1500)
    const said = await told(test, proxy.url, 4000)
    expect(said).toEqual([
      expect.stringMatching(/^websocket no upgrade from /),
      'connect_error no OPEN within 4000 ms {"middleware":true}',
    ])
    expect(runs).toEqual(['websocket', 'sse'])
  })
})

describe.concurrent('a handshake middleware slow once, with reconnection off, and an event stream slow to start on the try again', () => {
  it("gives the stream's first bytes connectTimeout from its GET, not what the handshake left: no stall", async (context) => {
    const test = own(context)
    // The first HELLO's middleware never settles: the server answers it, middleware slow, after
    // 1000 ms; the try again, 50 ms later, has about 1950 ms left, and its OPEN comes at once.
    // The stream's GET then reaches the server 2300 ms late (a slow network): past what was left,
    // within connectTimeout of the GET, as the README promises every stream.
    let runs = 0
    const server = await test.server(
      (app) =>
        parleyOf(app).use(async () => {
          if (++runs === 1) await new Promise<void>(() => {})
        }),
      { handshakeTimeout: 1000 },
    )
    const slowGets: string[] = []
    const socket = test.client(server.url, {
      transports: ['sse', 'polling'],
      connectTimeout: 3000,
      ...tryAgainAfter(50),
      fetch: async (input, init) => {
        const url = String(input)
        if (/\/sse\?.*&sid=/.test(url) && init?.method === undefined) {
          slowGets.push(url)
          await new Promise((resolve) => setTimeout(resolve, 2300))
        }
        return fetch(input, init)
      },
    })
    const said: string[] = []
    socket.on('transport_error', (transport, error) => said.push(`${transport} ${error.message}`))
    socket.on('connect_error', (error: ParleyError<string>) => said.push(`connect_error ${error.message}`))
    await until(() => socket.connected || said.length > 0, 10_000, 'connect or an error')
    expect(said).toEqual([])
    expect(socket.transport).toBe('sse')
    expect(slowGets).toHaveLength(1)
    expect(runs).toBe(2)
  })
})
