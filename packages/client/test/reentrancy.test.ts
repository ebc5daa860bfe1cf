// Applications that call back into the socket from its own listeners, against the real server:
// disconnect() from a listener ends the connection there, and nothing more is said of it;
// connect() from a listener of an attempt that will not be retried starts the next one.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { startFaultProxy } from '../../../test/support/fault-proxy.js'
import { startRoundRobin } from '../../../test/support/round-robin.js'
import { client, closeAll, next, own, parleyOf, type ServerSocket, startServer, until } from './helpers.js'

const TRANSPORTS = ['websocket', 'sse', 'polling'] as const
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  vi.unstubAllGlobals()
  for (const cleanup of cleanups.splice(0)) await cleanup()
  await closeAll()
})

/** A server that records its sockets, behind a proxy that can cut the network. */
async function serve() {
  const sockets: ServerSocket[] = []
  const server = await startServer((app) => {
    parleyOf(app).on('connection', (socket) => {
      sockets.push(socket)
    })
  })
  const proxy = await startFaultProxy(server.port)
  cleanups.push(() => proxy.close())
  return { server, proxy, sockets }
}

type Own = 'connect' | 'disconnect' | 'connect_error' | 'reconnect_attempt' | 'reconnect'

/** The socket's own events `names`, in order, as `name` or `name:argument`. */
function record(
  socket: ReturnType<typeof client>,
  names: Own[] = ['connect', 'disconnect', 'connect_error', 'reconnect_attempt', 'reconnect'],
): string[] {
  const seen: string[] = []
  for (const name of names) {
    socket.on(name, (arg?: unknown) =>
      seen.push(typeof arg === 'string' || typeof arg === 'number' ? `${name}:${arg}` : name),
    )
  }
  return seen
}

describe.each(TRANSPORTS)('disconnect() from a listener, over %s', (transport) => {
  it('in reconnect_attempt: the attempt does not start', async () => {
    const { proxy, sockets } = await serve()
    const socket = client(proxy.url, { transports: [transport] })
    await next(socket, 'connect')
    // From here on: a first try that failed (connectTimeout, under load) has a reconnect_attempt
    // of its own, which the wait below would take for the one that comes after the cut.
    const seen = record(socket)
    // And a session the server opened for that first try, too late for it.
    const opened = sockets.length
    socket.on('reconnect_attempt', () => socket.disconnect())
    proxy.offline = true
    proxy.cut('all')
    const attempt = () => seen.findIndex((event) => event.startsWith('reconnect_attempt'))
    await until(() => attempt() >= 0, 8000, 'an attempt')
    proxy.offline = false
    await sleep(500)
    expect(socket.active).toBe(false)
    expect(sockets).toHaveLength(opened)
    // Nothing after it: no connect_error of an attempt that went on, no connect.
    expect(seen.slice(attempt() + 1)).toEqual([])
    // connect() starts a new session.
    socket.connect()
    await next(socket, 'connect')
    expect(sockets).toHaveLength(opened + 1)
  })
})

describe.each(TRANSPORTS)('disconnect() from a listener of a new connection, over %s', (transport) => {
  it('in the disconnect of a session found gone on resume: no connect follows', async () => {
    // Two nodes: the session opens on the first, resumes on the second, which does not know it.
    const a = await serve()
    const b = await serve()
    const balancer = await startRoundRobin([a.server.port, b.server.port])
    cleanups.push(() => balancer.close())
    balancer.avoid.add(1)
    const socket = client(balancer.url, { transports: [transport] })
    await next(socket, 'connect')
    // After the first connect: a first try that failed under load would add `reconnect`.
    const seen = record(socket, ['connect', 'disconnect', 'reconnect'])
    socket.on('disconnect', (reason) => {
      if (reason === 'session expired') socket.disconnect()
    })
    balancer.avoid.clear()
    balancer.avoid.add(0)
    balancer.cut()
    await until(() => seen.includes('disconnect:session expired'), 5000, 'the session found gone')
    await sleep(200)
    expect(seen).toEqual(['disconnect:session expired'])
    expect(socket.connected).toBe(false)
    // The next session is announced: the client had taken itself for up, and said nothing.
    socket.connect()
    await next(socket, 'connect')
    expect(b.sockets).toHaveLength(2)
  })

  it('in connect after failed attempts: no reconnect follows the disconnect', async () => {
    const { proxy } = await serve()
    const socket = client(proxy.url, { transports: [transport] })
    await next(socket, 'connect')
    const seen = record(socket, ['connect', 'disconnect', 'reconnect'])
    proxy.offline = true
    proxy.cut('all')
    await until(() => seen.includes('disconnect:transport close'), 8000, 'the disconnect')
    socket.on('connect', () => socket.disconnect())
    proxy.offline = false
    await until(() => seen.includes('disconnect:client disconnect'), 8000, 'the second disconnect')
    await sleep(200)
    expect(seen).toEqual(['disconnect:transport close', 'connect', 'disconnect:client disconnect'])
  }, 25_000)
})

describe.each(TRANSPORTS)('connect() from a listener, over %s', (transport) => {
  it('in connect_error after a refusal: tries again, with new credentials', async () => {
    const server = await startServer((app) => {
      parleyOf(app).use(async (socket) => {
        if ((socket.handshake.auth as { token?: string }).token !== 'good')
          throw Object.assign(new Error('bad token'), { code: 'BAD_TOKEN' })
      })
    })
    let token = 'bad'
    const socket = client(server.url, { transports: [transport], auth: () => ({ token }) })
    const seen: string[] = []
    socket.on('connect_error', (error, willRetry) => {
      seen.push(`${error.code}:${willRetry}`)
      if (willRetry) return
      // As in socket.io's documentation: new credentials, and again.
      token = 'good'
      socket.connect()
    })
    await next(socket, 'connect')
    expect(seen).toEqual(['BAD_TOKEN:false'])
  })
})

// Mostly a wait for STABLE_MS: the three transports go side by side, each test with its own
// server, proxy and client (`own`), which the afterEach above leaves alone.
describe.concurrent.each(TRANSPORTS)(
  'connect() in disconnect with reconnection off, over %s',
  (transport) => {
    it('connects again, as socket.io users reconnect by hand', async (context) => {
      const test = own(context)
      const server = await test.server()
      const proxy = test.later(await startFaultProxy(server.port))
      const socket = test.client(proxy.url, { transports: [transport], reconnection: false })
      const seen = record(socket)
      await next(socket, 'connect')
      socket.on('disconnect', () => {
        proxy.offline = false
        socket.connect()
      })
      // Up long enough that the loss resumes at once: that resume fails, and none follows.
      await sleep(2100)
      proxy.offline = true
      proxy.cut('all')
      await until(() => seen.length === 3, 8000, 'the connect after the disconnect')
      expect(socket.connected).toBe(true)
      // The attempt that gave up says nothing more: its connect_error would tell a client that
      // is connecting again that it will not retry.
      expect(seen).toEqual(['connect', 'disconnect:transport close', 'connect'])
    })
  },
)

it('disconnect() in connect_error after a transport lost right after it opened stops the client (polling)', async () => {
  // Behind a balancer without session routing, polling opens on one node and its first GET
  // reaches the other: PARLEY_UNKNOWN_SESSION, and the client would wait for its backoff.
  const a = await serve()
  const b = await serve()
  const balancer = await startRoundRobin([a.server.port, b.server.port])
  cleanups.push(() => balancer.close())
  const socket = client(balancer.url, { transports: ['polling'] })
  const codes: string[] = []
  socket.on('connect_error', (error) => {
    codes.push(error.code)
    socket.disconnect()
  })
  await until(() => codes.length > 0, 5000, 'connect_error')
  expect(codes).toEqual(['PARLEY_UNKNOWN_SESSION'])
  await sleep(300)
  expect(socket.active).toBe(false)
  expect(a.sockets.length + b.sockets.length).toBe(1)
  // connect() is not ignored, as it was while the client stayed "connecting".
  socket.connect()
  expect(socket.active).toBe(true)
  await until(() => codes.length === 2, 5000, 'the second attempt')
})

it('disconnect() in disconnect while offline stops the client', async () => {
  const nav = { onLine: true }
  vi.stubGlobal('navigator', nav)
  const { proxy, sockets } = await serve()
  const socket = client(proxy.url, { transports: ['websocket'] })
  const seen = record(socket)
  await next(socket, 'connect')
  socket.on('disconnect', () => socket.disconnect())
  nav.onLine = false
  proxy.cut('all')
  await until(() => seen.includes('disconnect:transport close'), 3000, 'the disconnect')
  nav.onLine = true
  await sleep(500)
  expect(seen).toEqual(['connect', 'disconnect:transport close'])
  expect(socket.active).toBe(false)
  expect(sockets).toHaveLength(1)
})

it('disconnect() in transport_error asks for auth no more', async () => {
  const { proxy } = await serve()
  proxy.ws = 'reject'
  let asked = 0
  const socket = client(proxy.url, {
    transports: ['websocket', 'polling'],
    auth: () => {
      asked++
      return {}
    },
  })
  socket.on('transport_error', () => socket.disconnect())
  await until(() => !socket.active, 3000, 'the client to stop')
  await sleep(200)
  expect(asked).toBe(1)
})
