import parley from '@parley/server'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { afterEach, type TestContext } from 'vitest'
import { type FaultProxy, startFaultProxy } from '../../../test/support/fault-proxy.js'
import { connect } from '../src/index.js'
import type { ClientOptions } from '../src/options.js'
import type { Socket } from '../src/socket.js'

export type ServerOptions = Record<string, unknown>

export interface TestServer {
  app: FastifyInstance
  port: number
  url: string
  close(): Promise<void>
}

/** A Fastify app with Parley on 127.0.0.1, on `port` (0: any free one). */
export async function startServer(
  setup: (app: FastifyInstance) => void = () => {},
  options: ServerOptions = {},
  port = 0,
  fastifyOptions: FastifyServerOptions = {},
): Promise<TestServer> {
  const app = Fastify(fastifyOptions)
  await app.register(parley, { pingInterval: 1000, pingTimeout: 1000, ...options })
  setup(app)
  await app.listen({ port, host: '127.0.0.1' })
  const address = app.server.address()
  const actual = typeof address === 'object' && address ? address.port : port
  const server = { app, port: actual, url: `http://127.0.0.1:${actual}`, close: () => app.close() }
  servers.add(server)
  return server
}

/** Servers `startServer` made that `closeAll` has not closed yet. */
const servers = new Set<TestServer>()

/** The part of the server's socket the tests use. */
export interface ServerSocket {
  id: string
  handshake: { auth: unknown }
  on(event: string, fn: (...args: never[]) => void): void
  emit(event: string, ...args: unknown[]): void
  emitWithAck(event: string, ...args: unknown[]): Promise<unknown>
  disconnect(): void
  /** Bytes kept for replay (until the client's ACK) or not yet written. */
  readonly bufferedAmount: number
}

/** The part of `app.parley` the tests use. */
export interface TestParley {
  on(event: 'connection', fn: (socket: ServerSocket) => void): void
  use(fn: (socket: ServerSocket) => Promise<void>): void
  readonly sockets: ReadonlyMap<string, ServerSocket>
}

export const parleyOf = (app: FastifyInstance): TestParley =>
  (app as unknown as { parley: TestParley }).parley

/** A server whose sessions keep what they hear of `price` (see `pricesServer`). */
export interface PricesServer {
  server: TestServer
  /** Each `price` value its sessions heard, in order. */
  got: unknown[]
  /** How many sessions connected. */
  sessions(): number
  /** The socket of the last session, once one connected. */
  socket(): ServerSocket | undefined
}

/**
 * A server that keeps each `price` its sessions hear and counts them: the client's error suites
 * check that what the client refused never went, and that the session lived on. `more` adds
 * handlers to each session's socket.
 */
export async function pricesServer(
  options: ServerOptions,
  more: (socket: ServerSocket) => void = () => {},
): Promise<PricesServer> {
  const got: unknown[] = []
  let sessions = 0
  let last: ServerSocket | undefined
  const server = await startServer(
    (app) =>
      parleyOf(app).on('connection', (socket) => {
        sessions++
        last = socket
        socket.on('price', (value: unknown) => got.push(value))
        more(socket)
      }),
    options,
  )
  return { server, got, sessions: () => sessions, socket: () => last }
}

/**
 * A heartbeat that a loaded machine does not miss (the helpers' 1 s ping ended a session once,
 * under other test files): for the suites that assert their one session.
 */
export const STEADY_HEARTBEAT = { pingInterval: 10_000, pingTimeout: 10_000 }

/** A `pricesServer` and its client, connected: the scene of the client's error suites. */
export interface PricesSession extends Omit<PricesServer, 'socket'> {
  /** The client, connected over the one transport it was given. */
  socket: Socket
  /** The server's socket of the session, once it is there (at most 3 s). */
  peer(): Promise<ServerSocket>
}

/**
 * A `pricesServer` (with `STEADY_HEARTBEAT` unless `server` says otherwise, `more` on each
 * socket) and a client over `transport` alone (with `options`), connected to it.
 */
export async function pricesSession(
  transport: 'websocket' | 'sse' | 'polling',
  {
    server: serverOptions = STEADY_HEARTBEAT,
    options = {},
    more,
  }: { server?: ServerOptions; options?: ClientOptions; more?: (socket: ServerSocket) => void } = {},
): Promise<PricesSession> {
  const { socket: last, ...prices } = await pricesServer(serverOptions, more)
  const socket = client(prices.server.url, { transports: [transport], ...options })
  await next(socket, 'connect')
  const peer = async () => {
    await until(() => last() !== undefined, 3000, 'the server socket')
    return last()!
  }
  return { ...prices, socket, peer }
}

const sockets = new Set<Socket>()

/**
 * A client with short test timings; closed by `closeClients()`. One with `reconnection: false`
 * has a single try: it gets 5 s to connect unless told otherwise, since the first handshake of a
 * cold process on a loaded machine can take longer than 800 ms and nothing would follow it.
 */
export function client(url: string, options: ClientOptions = {}): Socket {
  const s = testClient(url, options)
  sockets.add(s)
  return s
}

/** A client with the short test timings of `client`, which no `closeClients()` closes. */
function testClient(url: string, options: ClientOptions): Socket {
  return connect(url, {
    connectTimeout: options.reconnection === false ? 5000 : 800,
    reconnectionDelay: 50,
    reconnectionDelayMax: 200,
    ackTimeout: 2000,
    upgradeDelay: 200,
    storage: memoryStorage(),
    ...options,
  })
}

/**
 * What one test opens, closed once that test finished (its clients first, then the rest, the
 * last opened first), by its own context's `onTestFinished`: for tests that run side by side
 * (`describe.concurrent`), where a shared `afterEach` (`closeAll`, `closeClients`) would close
 * what the tests still running use. Nothing made here is known to `closeAll`.
 */
export function own({ onTestFinished }: Pick<TestContext, 'onTestFinished'>) {
  const clients: Socket[] = []
  const closers: (() => Promise<void>)[] = []
  onTestFinished(async () => {
    for (const socket of clients) socket.disconnect()
    for (const close of closers.reverse()) await close()
  })
  return {
    /** `startServer`, closed by `closeServer` once the test finished. */
    async server(setup?: (app: FastifyInstance) => void, options?: ServerOptions): Promise<TestServer> {
      const server = await startServer(setup, options)
      servers.delete(server)
      closers.push(() => closeServer(server))
      return server
    },
    /** `client`, disconnected once the test finished. */
    client(url: string, options: ClientOptions = {}): Socket {
      const socket = testClient(url, options)
      clients.push(socket)
      return socket
    },
    /** Something else to close once the test finished (a proxy): `close` is called then. */
    later<T extends { close(): Promise<void> }>(thing: T): T {
      closers.push(() => thing.close())
      return thing
    },
  }
}

/**
 * For a file whose tests each start one server behind a fault proxy: `proxied()` starts them
 * (`startServer`'s arguments), and after each test its clients are disconnected, then the proxy
 * and the server closed. Call it at the file's top level.
 */
export function proxiedServers() {
  let server: TestServer | undefined
  let proxy: FaultProxy | undefined
  afterEach(async () => {
    closeClients()
    await proxy?.close()
    if (server) await closeServer(server)
    server = undefined
    proxy = undefined
  })
  return async (...args: Parameters<typeof startServer>) => {
    server = await startServer(...args)
    proxy = await startFaultProxy(server.port)
    return { server, proxy }
  }
}

export function closeClients(): void {
  for (const s of sockets) s.disconnect()
  sockets.clear()
}

/** Disconnects the clients, then closes every server `startServer` made: for `afterEach`. */
export async function closeAll(): Promise<void> {
  closeClients()
  for (const server of [...servers]) await closeServer(server)
}

/**
 * Closes `server` once its test is over, ending its sessions first. At close, a session still
 * alive ends with a CLOSE that the server keeps, for a polling or SSE client, for the GET it
 * expects from that client next, and the close waits up to 1 s for that GET
 * (`nextGetWithin`): a GET that a client the test disconnected (its goodbye still on its way) or
 * cut off never sends. A test of what a closing server does calls `server.close()` itself.
 */
export async function closeServer(server: TestServer): Promise<void> {
  servers.delete(server)
  for (const socket of [...parleyOf(server.app).sockets.values()]) socket.disconnect()
  await server.close()
}

/**
 * A fetch for a polling client that polls at a slow pace: each GET goes out `ms` after the call.
 *
 * A closing server keeps a CLOSE for the next GET of a client between two polls, and waits for
 * that GET as long as the client's own pace allows: four times its slowest recent turnaround
 * (answer to next GET), 100 ms at the least, from the last answer. A client that polls at once
 * is given those 100 ms, which a loaded machine can use up before the GET (or even the close)
 * comes; a test whose client must get the CLOSE makes it poll at this pace, and is then given
 * four times `ms` for the GET that comes `ms` after the answer.
 */
export function pacedFetch(ms: number): typeof fetch {
  return async (input, init) => {
    if ((init?.method ?? 'GET') === 'GET') await new Promise((resolve) => setTimeout(resolve, ms))
    return fetch(input, init)
  }
}

export function memoryStorage() {
  const map = new Map<string, string>()
  return {
    getItem: (k: string) => map.get(k) ?? null,
    setItem: (k: string, v: string) => void map.set(k, v),
    removeItem: (k: string) => void map.delete(k),
  }
}

/** Resolves with the arguments of the next `event` on `target`, or rejects after `ms`. */
export function next<T extends unknown[] = unknown[]>(
  target: { once(event: string, fn: (...args: never[]) => void): unknown },
  event: string,
  ms = 3000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${event}" within ${ms} ms`)), ms)
    target.once(event, ((...args: unknown[]) => {
      clearTimeout(timer)
      resolve(args as T)
    }) as (...args: never[]) => void)
  })
}

/** What `f` throws, or undefined: for an emit that must throw at once, its error then compared. */
export function thrown(f: () => unknown): unknown {
  try {
    f()
  } catch (error) {
    return error
  }
  return undefined
}

/** Waits until `check` is true, polling every 10 ms, at most `ms` (monotonic, as the server tests' `until`). */
export async function until(check: () => boolean, ms = 3000, what = 'condition'): Promise<void> {
  const end = performance.now() + ms
  while (!check()) {
    if (performance.now() > end) throw new Error(`${what} not met within ${ms} ms`)
    await new Promise((r) => setTimeout(r, 10))
  }
}
