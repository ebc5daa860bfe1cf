// app.close() on an HTTP/2 Fastify (h2c here: the same sessions as over TLS) with clients still
// connected: Node's close() of an HTTP/2 server (before Node 24) leaves their sessions open, and
// the plugin closes them once its last words are out, without cutting an answer under way.
import http2 from 'node:http2'
import tls from 'node:tls'
import parley from '@parley/server'
import Fastify from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { sleep, until, within } from './helpers.js'
import { selfSigned } from './self-signed.js'

const opened: { close(): Promise<unknown> }[] = []
const clients: http2.ClientHttp2Session[] = []

afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy()
  for (const app of opened.splice(0)) await app.close()
})

/**
 * An h2c Fastify with Parley and a route whose answer is `size` bytes, sent after `delay` ms. It
 * takes extended CONNECTs (RFC 8441): Chromium's WebSocket over HTTP/2, which Parley refuses.
 */
async function h2cServer() {
  const app = Fastify({ http2: true })
  app.server.updateSettings({ enableConnectProtocol: true })
  opened.push(app)
  await app.register(parley, {})
  app.get<{ Querystring: { size: string; delay: string } }>('/data', async (request, reply) => {
    await sleep(Number(request.query.delay))
    return reply.type('application/octet-stream').send(Buffer.alloc(Number(request.query.size), 7))
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const client = http2.connect(`http://127.0.0.1:${port}`)
  clients.push(client)
  await new Promise((resolve, reject) => client.once('remoteSettings', resolve).once('error', reject))
  return { app, client }
}

/** Sends a request, a GET by default; an extended CONNECT keeps its side open after it. */
/** An HTTP/1.1 connection over TLS to the loopback `port` (ALPN `http/1.1`), its handshake done. */
async function http1OverTls(port: number): Promise<tls.TLSSocket> {
  const socket = tls.connect({
    host: '127.0.0.1',
    port,
    rejectUnauthorized: false,
    ALPNProtocols: ['http/1.1'],
  })
  try {
    await within(
      new Promise((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject)),
      5000,
      'the TLS handshake',
    )
  } catch (err) {
    socket.destroy()
    throw err
  }
  return socket
}

function get(client: http2.ClientHttp2Session, path: string, headers: http2.OutgoingHttpHeaders = {}) {
  const stream = client.request({ ':path': path, ...headers })
  const answer = new Promise<{ status: unknown; bytes: number }>((resolve, reject) => {
    let status: unknown
    let bytes = 0
    stream.on('response', (headers) => {
      status = headers[':status']
    })
    stream.on('data', (chunk: Buffer) => {
      bytes += chunk.length
    })
    stream.on('end', () => resolve({ status, bytes }))
    stream.on('error', reject)
  })
  return { stream, answer }
}

describe('app.close() on HTTP/2 with clients connected', () => {
  it('ends with an idle session open', async () => {
    const { app, client } = await h2cServer()
    expect((await get(client, '/data?size=10&delay=0').answer).bytes).toBe(10)
    await within(app.close(), 5000, 'the close')
  })

  it('ends with a refused WebSocket over HTTP/2 whose client never ended its side', async () => {
    const { app, client } = await h2cServer()
    const connect = { ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'http' }
    const { stream, answer } = get(client, '/parley/ws?v=1', { ...connect, 'sec-websocket-version': '13' })
    await within(answer, 5000, 'the refusal')
    expect(stream.closed).toBe(false)
    await within(app.close(), 5000, 'the close')
  })

  it('lets an answer under way finish whole before the session closes', async () => {
    const { app, client } = await h2cServer()
    const { answer } = get(client, '/data?size=200000&delay=300')
    await sleep(50)
    await within(app.close(), 5000, 'the close')
    expect(await within(answer, 5000, 'the answer')).toEqual({ status: 200, bytes: 200000 })
  })

  it('ends with an HTTP/1.1 connection beside (allowHTTP1) that never carried a request', async () => {
    const app = Fastify({ http2: true, https: { ...selfSigned(), allowHTTP1: true } })
    opened.push(app)
    await app.register(parley, {})
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as { port: number }
    let accepted = false
    app.server.once('secureConnection', () => {
      accepted = true
    })
    const socket = await http1OverTls(port)
    try {
      expect(socket.alpnProtocol).toBe('http/1.1')
      await until(() => accepted, 5000, 'the server to have the connection')
      await within(app.close(), 5000, 'the close')
    } finally {
      socket.destroy()
    }
  })

  it.each([
    ['idle after its answer', 1, false],
    ['whose second answer is under way', 1, true],
    ['whose first answer is under way', 0, true],
  ])(
    'ends with a keep-alive HTTP/1.1 connection beside (allowHTTP1) %s at the close',
    async (_name, before, underWay) => {
      const app = Fastify({ http2: true, https: { ...selfSigned(), allowHTTP1: true } })
      opened.push(app)
      await app.register(parley, {})
      app.get<{ Querystring: { delay: string } }>('/data', async (request) => {
        await sleep(Number(request.query.delay))
        return 'data'
      })
      await app.listen({ port: 0, host: '127.0.0.1' })
      const { port } = app.server.address() as { port: number }
      const socket = await http1OverTls(port)
      try {
        let answers = ''
        socket.on('data', (chunk: Buffer) => {
          answers += String(chunk)
        })
        const ended = new Promise((resolve) => socket.once('end', resolve))
        const ask = (delay: number) =>
          socket.write(
            `GET /data?delay=${delay} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n`,
          )
        const count = () => answers.split('HTTP/1.1 200').length - 1
        for (let i = 0; i < before; i++) {
          ask(0)
          await until(() => count() === i + 1 && answers.endsWith('data'), 5000, 'an answer before the close')
        }
        if (underWay) {
          ask(300)
          await sleep(50)
        }
        await within(app.close(), 5000, 'the close')
        await within(ended, 5000, 'the connection ended by the server')
        expect(count()).toBe(before + (underWay ? 1 : 0))
      } finally {
        socket.destroy()
      }
    },
  )

  it('ends with a WebSocket upgrade beside (allowHTTP1) that Fastify refused as it closed', async () => {
    const app = Fastify({ http2: true, https: { ...selfSigned(), allowHTTP1: true } })
    opened.push(app)
    // A close hook of the application's, added before the plugin: Fastify answers 503 meanwhile
    // (but on the endpoints, which Parley answers itself: the upgrade is of another path).
    let release = () => {}
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    app.addHook('preClose', () => held)
    await app.register(parley, {})
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as { port: number }
    const closing = app.close()
    const socket = await http1OverTls(port)
    try {
      let answer = ''
      socket.on('data', (chunk: Buffer) => {
        answer += String(chunk)
      })
      socket.write(
        'GET /elsewhere/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
          'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
      )
      await until(() => answer.startsWith('HTTP/1.1 503'), 5000, "Fastify's 503")
      release()
      await within(closing, 5000, 'the close')
    } finally {
      release()
      socket.destroy()
    }
  })
})
