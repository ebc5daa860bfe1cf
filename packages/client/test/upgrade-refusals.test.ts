// An upgrade the server answers with an HTTP status instead of 101 (a forbidden origin, another
// protocol version, a transport it leaves out, a shutdown): in Node, with `ws`, the client reads
// the answer's `{code, message}` and acts on it as SSE and polling do on the same answer (stop,
// try again, go on). Every case runs over every transport against the real server, so that the
// WebSocket's error is checked against the one the HTTP transports make.
import { ErrorCode, type ParleyError } from '@parley/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import type { ClientOptions } from '../src/options.js'
import type { Socket } from '../src/socket.js'
import { closeAll, next, startServer, client as testClient, until } from './helpers.js'

afterEach(closeAll)

/**
 * A test client whose attempt waits 5 s for each transport's answer. Every answer here is a
 * refusal, which comes at once: the bound only has to outlast a slow first request of a cold
 * process (its first fetch above all) on a loaded machine, which took over the 800 ms of the
 * helpers and failed as PARLEY_HANDSHAKE_TIMEOUT instead of the refusal under test.
 */
const client = (url: string, options: ClientOptions = {}): Socket =>
  testClient(url, { connectTimeout: 5000, ...options })

const TRANSPORTS = ['websocket', 'sse', 'polling'] as const
type Transport = (typeof TRANSPORTS)[number]

/** What the application hears of a failed attempt: each `transport_error`, then `connect_error`. */
async function firstFailure(socket: Socket) {
  const tried: string[] = []
  socket.on('transport_error', (name: string, error: ParleyError<string>) =>
    tried.push(`${name} ${error.code}`),
  )
  const [error, willRetry] = await next<[ParleyError<string>, boolean]>(socket, 'connect_error', 10_000)
  return { error, willRetry, tried }
}

/** A client whose every request (the upgrade, or fetch) says it comes from `origin`. */
function fromOrigin(transport: Transport, origin: string): ClientOptions {
  if (transport === 'websocket') {
    class FromPage extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols, { origin })
      }
    }
    return { WebSocket: FromPage }
  }
  return {
    fetch: (input, init) => fetch(input, { ...init, headers: { ...(init?.headers as object), origin } }),
  }
}

/** A client one protocol version ahead of the server: it asks for v=2. */
function nextVersion(transport: Transport): ClientOptions {
  const ahead = (url: string) => url.replace('v=1', 'v=2')
  if (transport === 'websocket') {
    class Ahead extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(ahead(url), protocols)
      }
    }
    return { WebSocket: Ahead }
  }
  return { fetch: (input, init) => fetch(ahead(String(input)), init) }
}

describe.each(TRANSPORTS)('a refusal before the session, over %s alone', (transport) => {
  it('of the origin stops the client with PARLEY_ORIGIN_FORBIDDEN and the origin refused', async () => {
    const server = await startServer(() => {}, { allowedOrigins: ['http://page.test'] })
    const socket = client(server.url, {
      transports: [transport],
      ...fromOrigin(transport, 'http://evil.test'),
    })
    const { error, willRetry, tried } = await firstFailure(socket)
    expect(error).toMatchObject({
      code: ErrorCode.ORIGIN_FORBIDDEN,
      message: expect.stringContaining('http://evil.test'),
      details: { status: 403, refused: true },
    })
    expect(willRetry).toBe(false)
    expect(tried).toEqual([`${transport} ${ErrorCode.ORIGIN_FORBIDDEN}`])
    await until(() => !socket.active, 2000, 'the client to stop')
  })

  it('of the protocol version stops the client with PARLEY_UNSUPPORTED_VERSION', async () => {
    const server = await startServer()
    const socket = client(server.url, { transports: [transport], ...nextVersion(transport) })
    const { error, willRetry } = await firstFailure(socket)
    expect(error).toMatchObject({
      code: ErrorCode.UNSUPPORTED_VERSION,
      message: 'this server speaks v=1',
      details: { status: 400, refused: true },
    })
    expect(willRetry).toBe(false)
  })

  it('of a transport the server leaves out says PARLEY_TRANSPORT_DISABLED, and the client tries again', async () => {
    const offered = TRANSPORTS.filter((t) => t !== transport)
    const server = await startServer(() => {}, { transports: offered })
    const socket = client(server.url, { transports: [transport] })
    const { error, willRetry } = await firstFailure(socket)
    expect(error).toMatchObject({
      code: ErrorCode.TRANSPORT_DISABLED,
      message: `the ${transport} transport is disabled: this server offers ${offered.join(', ')}`,
      details: { status: 404, refused: false },
    })
    expect(willRetry).toBe(true)
  })

  it('by a server that shut down says PARLEY_SERVER_SHUTTING_DOWN, tries once more, then backs off', async () => {
    const server = await startServer()
    const parley = (server.app as unknown as { parley: { drain(): Promise<void>; close(): void } }).parley
    // What a deploy does on SIGTERM, before app.close(): the server still listens meanwhile.
    await parley.drain()
    parley.close()
    const socket = client(server.url, { transports: [transport] })
    const { error, willRetry, tried } = await firstFailure(socket)
    expect(error).toMatchObject({
      code: ErrorCode.SERVER_SHUTTING_DOWN,
      message: 'the server is shutting down',
      details: { status: 503, refused: false },
    })
    expect(willRetry).toBe(true)
    expect(tried).toEqual([
      `${transport} ${ErrorCode.SERVER_SHUTTING_DOWN}`,
      `${transport} ${ErrorCode.SERVER_SHUTTING_DOWN}`,
    ])
  })
})

it("reads a proxy's page as PARLEY_TRANSPORT_ERROR with the status and the URL, and tries again", async () => {
  const server = await startServer((app) => {
    app.addHook('onRequest', async (request, reply) => {
      if (request.url.startsWith('/parley/ws'))
        return reply.code(502).type('text/html').send('<h1>Bad Gateway</h1>')
    })
  })
  const socket = client(server.url, { transports: ['websocket'] })
  const { error, willRetry } = await firstFailure(socket)
  expect(error).toMatchObject({
    code: ErrorCode.TRANSPORT_ERROR,
    message: `HTTP 502 from ${server.url.replace('http', 'ws')}/parley/ws`,
    details: { status: 502, refused: false },
  })
  expect(willRetry).toBe(true)
})

it('goes on to SSE past a bare 403 at the upgrade (a firewall that lets no WebSocket through)', async () => {
  const server = await startServer((app) => {
    app.addHook('onRequest', async (request, reply) => {
      if (request.url.startsWith('/parley/ws')) return reply.code(403).type('text/plain').send('Forbidden')
    })
  })
  const socket = client(server.url)
  const tried: string[] = []
  socket.on('transport_error', (name: string, error: ParleyError<string>) =>
    tried.push(`${name} ${error.code} ${error.details?.status}`),
  )
  await next(socket, 'connect', 10_000)
  expect(socket.transport).toBe('sse')
  expect(tried).toEqual([`websocket ${ErrorCode.TRANSPORT_ERROR} 403`])
})
