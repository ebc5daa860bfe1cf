// The last words at close on an HTTP/2 Fastify, as on an HTTP/1.1 one (last-words.test.ts): a
// polling client between two polls gets its CLOSE 'server shutdown' from its next GET, and the
// endpoints' other requests get Parley's coded 503, not Fastify's bare one. Over h2c and over TLS
// (where an HTTP/1.1 client beside, `allowHTTP1`, keeps what HTTP/1.1 gets). The server's own
// page, with no allowedOrigins, is known by the request's `:authority`: h2 has no Host.

import http2 from 'node:http2'
import { decodeText, PacketType } from '@parley/protocol'
import parley, { type ParleyServer } from '@parley/server'
import Fastify from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { packetsOf } from './answer-packets.js'
import { answerOf, type H2Node, http1Request, startH2Node } from './h2-node.js'
import { type ClosableApp, closeApp, until, within } from './helpers.js'
import { selfSigned } from './self-signed.js'

const apps: ClosableApp[] = []
const clients: http2.ClientHttp2Session[] = []
const nodes: H2Node[] = []
const warnings: Error[] = []
const noteWarning = (warning: Error) => warnings.push(warning)

afterEach(async () => {
  process.off('warning', noteWarning)
  warnings.length = 0
  for (const client of clients.splice(0)) client.destroy()
  for (const node of nodes.splice(0)) await node.stop()
  for (const app of apps.splice(0)) await closeApp(app)
})

/** The page the servers below allow. */
const PAGE = 'http://page.test'

interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  text: string
}

/** What the tests use of an HTTP/2 Fastify, over TLS or h2c alike. */
interface H2App {
  parley: ParleyServer
  server: { address(): unknown }
  close(): Promise<unknown>
}

/** An HTTP/2 Fastify with Parley, over TLS (with `allowHTTP1`) or h2c, listening on 127.0.0.1. */
async function listening(tls: { key: Buffer; cert: Buffer } | undefined): Promise<H2App> {
  // Two instances of two types (TLS or not): each registered on its own.
  if (tls) {
    const app = Fastify({ http2: true, https: { ...tls, allowHTTP1: true } })
    apps.push(app)
    await app.register(parley, { allowedOrigins: [PAGE] })
    await app.listen({ port: 0, host: '127.0.0.1' })
    return app
  }
  const app = Fastify({ http2: true })
  apps.push(app)
  await app.register(parley, { allowedOrigins: [PAGE] })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return app
}

/** An HTTP/2 Fastify with Parley (TLS with `allowHTTP1`, or h2c) and an h2 client connected to it. */
async function h2Server(secure: boolean) {
  const tls = selfSigned()
  const app = await listening(secure ? tls : undefined)
  const { port } = app.server.address() as { port: number }
  const origin = `${secure ? 'https' : 'http'}://127.0.0.1:${port}`
  const client = http2.connect(origin, secure ? { ca: tls.cert } : {})
  clients.push(client)
  await within(
    new Promise((resolve, reject) => client.once('remoteSettings', resolve).once('error', reject)),
    5000,
    'the connection',
  )
  /** One request on the h2 connection, a stream of its own. */
  const send = (method: string, path: string, body = '', headers: http2.OutgoingHttpHeaders = {}) =>
    new Promise<Answer>((resolve, reject) => {
      const stream = client.request({
        ':method': method,
        ':path': `/parley/${path}`,
        origin: PAGE,
        ...headers,
      })
      let status = 0
      let answerHeaders: Answer['headers'] = {}
      let text = ''
      stream.setEncoding('utf8')
      stream.on('response', (received) => {
        status = Number(received[':status'])
        answerHeaders = received
      })
      stream.on('data', (chunk: string) => {
        text += chunk
      })
      stream.on('end', () => resolve({ status, headers: answerHeaders, text }))
      stream.on('error', reject)
      // A GET's stream ends with its headers (Node's default for it).
      if (method !== 'GET') stream.end(body)
    })
  return { app, port, send, client }
}

/** A polling (or SSE) session opened by its handshake POST alone: the client has not polled yet. */
async function handshake(
  send: Awaited<ReturnType<typeof h2Server>>['send'],
  endpoint = 'poll',
): Promise<string> {
  const answer = await send('POST', `${endpoint}?v=1`, JSON.stringify([8, {}]), {
    'content-type': 'text/plain',
  })
  const decoded = decodeText(answer.text)
  if (!decoded.ok || decoded.packet.type !== PacketType.OPEN) throw new Error(`no OPEN: ${answer.text}`)
  return decoded.packet.sid
}

describe.each([
  ['h2c', false],
  ['TLS', true],
])('at close, on HTTP/2 (%s)', (_name, secure) => {
  it.each(['poll', 'sse'])(
    'hands the CLOSE to the next GET of a %s client that had none waiting',
    async (endpoint) => {
      const { app, send } = await h2Server(secure)
      const sid = await handshake(send, endpoint)
      process.on('warning', noteWarning)
      const closing = app.close()
      await until(() => app.parley.closed, 2000, 'the server closing')

      const answer = await within(send('GET', `${endpoint}?v=1&sid=${sid}`), 5000, 'the GET')
      expect(answer.status).toBe(200)
      expect(answer.headers['access-control-allow-origin']).toBe(PAGE)
      expect(packetsOf(answer.text)).toEqual([
        expect.objectContaining({
          type: PacketType.CLOSE,
          reason: 'server shutdown',
          retryAfter: expect.any(Number),
        }),
      ])
      await within(closing, 5000, 'the close')
      // No connection-specific header tried on an HTTP/2 answer (Node warns, and drops it).
      expect(warnings.map(String)).toEqual([])
    },
  )

  it("answers the endpoints' other requests with Parley's coded 503, readable by the page", async () => {
    const { app, send } = await h2Server(secure)
    const sid = await handshake(send)
    process.on('warning', noteWarning)
    const closing = app.close()
    await until(() => app.parley.closed, 2000, 'the server closing')
    const requests: [string, string, string][] = [
      ['GET', 'poll?v=1&sid=nosuchsessionatall000', ''],
      ['POST', 'poll?v=1', '[8,{}]'],
      ['POST', 'sse?v=1&sid=nosuchsessionatall000', '[3]'],
    ]
    for (const [method, path, body] of requests) {
      const answer = await within(send(method, path, body), 5000, `${method} ${path}`)
      expect({ method, path, status: answer.status, body: JSON.parse(answer.text) }).toEqual({
        method,
        path,
        status: 503,
        body: { code: 'PARLEY_SERVER_SHUTTING_DOWN', message: 'the server is shutting down' },
      })
      expect(answer.headers['access-control-allow-origin']).toBe(PAGE)
    }
    // The session's client polls at last: its words, then the close goes on without waiting.
    await send('GET', `poll?v=1&sid=${sid}`)
    await within(closing, 5000, 'the close')
    expect(warnings.map(String)).toEqual([])
  })
})

describe.each([
  ['h2c', false],
  ['TLS', true],
])('at close, on HTTP/2 (%s), a POST past maxPayload', (_name, secure) => {
  it('gets its 413 on its stream, the connection left to the other streams', async () => {
    const { app, send, client } = await h2Server(secure)
    const sid = await handshake(send)
    process.on('warning', noteWarning)
    const closing = app.close()
    await until(() => app.parley.closed, 2000, 'the server closing')
    // A body said to pass maxPayload (1 MB by default), of which a little comes, never its end.
    const stream = client.request({
      ':method': 'POST',
      ':path': `/parley/poll?v=1&sid=${sid}`,
      origin: PAGE,
      'content-type': 'text/plain',
      'content-length': String(4 * 1024 * 1024),
    })
    stream.write('[3]')
    const refused = await within(answerOf(stream), 5000, 'the 413')
    expect({ status: refused.status, code: JSON.parse(refused.text).code }).toEqual({
      status: 413,
      code: 'PARLEY_PAYLOAD_TOO_LARGE',
    })
    // The same connection carries the session's next poll, which gets its last words.
    const answer = await within(send('GET', `poll?v=1&sid=${sid}`), 5000, 'the poll')
    expect(packetsOf(answer.text)).toEqual([expect.objectContaining({ type: PacketType.CLOSE })])
    await within(closing, 5000, 'the close')
    expect(warnings.map(String)).toEqual([])
  })
})

describe('at close, on HTTP/2 with TLS and allowHTTP1', () => {
  it('hands an HTTP/1.1 client beside its CLOSE as on an HTTP/1.1 server, the connection closed with it', async () => {
    const { app, port, send } = await h2Server(true)
    const sid = await handshake(send)
    const closing = app.close()
    await until(() => app.parley.closed, 2000, 'the server closing')
    const answer = await within(
      http1Request(port, `/parley/poll?v=1&sid=${sid}`, { headers: { origin: PAGE } }),
      5000,
      'the HTTP/1.1 poll',
    )
    expect(answer.status).toBe(200)
    expect(answer.headers.connection).toBe('close')
    expect(packetsOf(answer.text)).toEqual([
      expect.objectContaining({ type: PacketType.CLOSE, reason: 'server shutdown' }),
    ])
    await within(closing, 5000, 'the close')
  })
})

describe('at close, on HTTP/2 with no allowedOrigins', () => {
  it("hands the server's own page its CLOSE: the page's host is the request's :authority", async () => {
    const node = await startH2Node()
    nodes.push(node)
    const own = { origin: `https://127.0.0.1:${node.port}` }
    const opened = await node.send('POST', 'poll?v=1', '[8,{}]', { ...own, 'content-type': 'text/plain' })
    const open = packetsOf(opened.text)[0]
    if (open?.type !== PacketType.OPEN) throw new Error(`no OPEN: ${opened.text}`)
    const closing = node.app.close()
    await until(() => node.app.parley.closed, 2000, 'the server closing')

    const answer = await within(node.send('GET', `poll?v=1&sid=${open.sid}`, '', own), 5000, 'the GET')
    // The same origin: no CORS header needed, none given.
    expect({ status: answer.status, origin: answer.headers['access-control-allow-origin'] }).toEqual({
      status: 200,
      origin: undefined,
    })
    expect(packetsOf(answer.text)).toEqual([
      expect.objectContaining({ type: PacketType.CLOSE, reason: 'server shutdown' }),
    ])
    await within(closing, 5000, 'the close')
  })
})
