// Two Fastify instances on one HTTP/2 server over TLS with `allowHTTP1` (each given it by its
// `serverFactory`), as mount-points.test.ts has them on an HTTP/1.1 one: when one closes, its
// listeners come off the server (`Http2Sessions.detach()`), and the other goes on serving there,
// over h2 and over HTTP/1.1, on the connections open before and on new ones; the last one to
// close ends every connection of the server, those opened before it was registered too.

import http2, { type Http2SecureServer, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2'
import tls from 'node:tls'
import { encodeText, PacketType } from '@parley/protocol'
import parley from '@parley/server'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { packetsOf } from './answer-packets.js'
import { type Gate, gate } from './gate.js'
import { http1Request } from './h2-node.js'
import { heardOn } from './heard.js'
import { closeApp, until, within } from './helpers.js'
import { selfSigned } from './self-signed.js'

const teardown: (() => Promise<void> | void)[] = []

afterEach(async () => {
  for (const step of teardown.splice(0).reverse()) await step()
})

type Handler = (req: Http2ServerRequest, res: Http2ServerResponse) => void

/**
 * One HTTP/2 server over TLS with `allowHTTP1`, its requests sent to the Fastify instance whose
 * prefix their path starts with, and the instances given it, one per prefix; closed, then the
 * server, when the test ends.
 */
function sharedServer(prefixes: string[]) {
  const tls = selfSigned()
  const server = http2.createSecureServer({ ...tls, allowHTTP1: true })
  const handlers: [string, Handler][] = []
  server.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => {
    const found = handlers.find(([prefix]) => req.url.startsWith(prefix))
    if (found) found[1](req, res)
    else res.writeHead(404).end()
  })
  const apps = prefixes.map((prefix) =>
    Fastify({
      http2: true,
      https: { allowHTTP1: true },
      serverFactory: (handler) => {
        handlers.push([prefix, handler as unknown as Handler])
        return server
      },
    }),
  ) as unknown as FastifyInstance<Http2SecureServer>[]
  teardown.push(async () => {
    for (const app of apps) await closeApp(app)
    await new Promise((resolve) => server.close(resolve))
  })
  return { server, apps, cert: tls.cert }
}

/** How many listeners of each event `server` has. */
function listenerCounts(server: Http2SecureServer): Record<string, number> {
  const events = ['request', 'upgrade', 'session', 'stream', 'secureConnection', 'connection']
  return Object.fromEntries(events.map((event) => [event, server.listenerCount(event)]))
}

/** An h2 connection to `port`, the fixture's certificate trusted; destroyed when the test ends. */
async function h2Client(port: number, cert: Buffer): Promise<http2.ClientHttp2Session> {
  const client = http2.connect(`https://127.0.0.1:${port}`, { ca: cert })
  teardown.push(() => void client.destroy())
  await within(
    new Promise((resolve, reject) => client.once('remoteSettings', resolve).once('error', reject)),
    5000,
    'the h2 connection',
  )
  return client
}

/** A polling handshake on `client`'s connection, a stream of its own: the packets answered. */
function h2Handshake(client: http2.ClientHttp2Session, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stream = client.request({
      ':method': 'POST',
      ':path': `${path}/poll?v=1`,
      'content-type': 'text/plain',
    })
    let text = ''
    stream.setEncoding('utf8')
    stream.on('data', (chunk: string) => {
      text += chunk
    })
    stream.on('end', () => resolve(text))
    stream.on('error', reject)
    stream.end(encodeText({ type: PacketType.HELLO, auth: {} }))
  })
}

/** Whether `text` is a handshake's answer: an OPEN first. */
function opened(text: string): boolean {
  return packetsOf(text)[0]?.type === PacketType.OPEN
}

/**
 * Two instances on one shared server, the first at `/a` with a route that answers once `slow`
 * opens, and an HTTP/1.1 connection whose GET there is under way; `hold`, when given, holds the
 * first one's close in its `onClose` hook.
 */
async function slowAnswerUnderWay(hold?: Gate) {
  const { server, apps, cert } = sharedServer(['/a', '/b'])
  const [first, second] = [apps[0]!, apps[1]!]
  await first.register(parley, { path: '/a' })
  const slow = gate()
  first.get('/a/slow', async () => {
    await slow.pass()
    return 'done'
  })
  if (hold) first.addHook('onClose', hold.pass)
  await first.ready()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  const socket = tls.connect({ host: '127.0.0.1', port, ca: cert, ALPNProtocols: ['http/1.1'] })
  const heard = heardOn(socket)
  teardown.push(() => void socket.destroy())
  socket.write('GET /a/slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
  await until(slow.reached, 5000, 'the slow route')
  return { first, second, socket, heard, slow }
}

/**
 * `slowAnswerUnderWay`, its first instance's close held under way, and the second registered at
 * `/b` on the server while it is (not ready yet, for the test to add its routes).
 */
async function restartedAtSlowAnswer() {
  const hold = gate()
  const { first, second: restarted, socket, heard, slow } = await slowAnswerUnderWay(hold)
  const closing = first.close()
  teardown.push(async () => {
    slow.open()
    hold.open()
    await closing
  })
  await until(hold.reached, 5000, 'the first instance to close')
  await restarted.register(parley, { path: '/b' })
  return { restarted, socket, heard, slow, hold, closing }
}

describe('two Fastify instances on one HTTP/2 server (serverFactory, allowHTTP1)', () => {
  it("take an instance's listeners off the server when it closes, and leave its connections to the other", async () => {
    const { server, apps, cert } = sharedServer(['/b', '/a'])
    const [second, first] = [apps[0]!, apps[1]!]
    await second.register(parley, { path: '/b' })
    await second.ready()
    const alone = listenerCounts(server)
    await first.register(parley, { path: '/a' })
    await first.ready()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    // A connection of each kind open before the close: an h2 one, and an HTTP/1.1 one beside.
    const before = await h2Client(port, cert)
    expect(opened(await within(h2Handshake(before, '/a'), 5000, 'the handshake on /a'))).toBe(true)
    expect(opened(await within(h2Handshake(before, '/b'), 5000, 'the handshake on /b'))).toBe(true)
    for (const socket of [...first.parley.sockets.values()]) socket.disconnect()
    await within(first.close(), 5000, 'the first instance to close')
    // Left on, each instance closed on the server would go on counting its sessions and streams.
    expect(listenerCounts(server)).toEqual(alone)
    // The second one serves on the connection open before, on a new one, and over HTTP/1.1.
    expect(opened(await within(h2Handshake(before, '/b'), 5000, 'a handshake on the old connection'))).toBe(
      true,
    )
    const after = await h2Client(port, cert)
    expect(opened(await within(h2Handshake(after, '/b'), 5000, 'a handshake on a new connection'))).toBe(true)
    const overHttp1 = await within(
      http1Request(port, '/b/poll?v=1', {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: encodeText({ type: PacketType.HELLO, auth: {} }),
      }),
      5000,
      'a handshake over HTTP/1.1',
    )
    expect(opened(overHttp1.text)).toBe(true)
    expect(second.parley.sockets.size).toBe(4)
  }, 35_000)

  it('let the last instance to close end the connections opened before it was registered', async () => {
    const { server, apps, cert } = sharedServer(['/a', '/b'])
    const [first, second] = [apps[0]!, apps[1]!]
    await first.register(parley, { path: '/a' })
    await first.ready()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    // Opened while the first instance is alone on the server: the second one comes after it. An
    // h2 connection, and an HTTP/1.1 one beside that carries no request.
    const early = await h2Client(port, cert)
    const unused = tls.connect({ host: '127.0.0.1', port, ca: cert, ALPNProtocols: ['http/1.1'] })
    unused.on('error', () => {})
    teardown.push(() => void unused.destroy())
    await within(new Promise((resolve) => unused.once('secureConnect', resolve)), 5000, 'the TLS connection')
    expect(opened(await within(h2Handshake(early, '/a'), 5000, 'the handshake on /a'))).toBe(true)
    await second.register(parley, { path: '/b' })
    await second.ready()
    expect(opened(await within(h2Handshake(early, '/b'), 5000, 'the handshake on /b'))).toBe(true)
    for (const app of [first, second]) {
      for (const socket of [...app.parley.sockets.values()]) socket.disconnect()
      await within(app.close(), 5000, 'an instance to close')
    }
    // The last one has closed the connection: the server's close waits for nothing.
    await within(new Promise((resolve) => server.close(resolve)), 5000, "the server's close")
    expect(early.closed || early.destroyed).toBe(true)
    expect(unused.destroyed || unused.readableEnded).toBe(true)
  }, 35_000)

  it('keep an HTTP/1.1 connection of an instance registered after the last one closed open between answers', async () => {
    const { server, apps, cert } = sharedServer(['/a', '/b'])
    const [first, second] = [apps[0]!, apps[1]!]
    await first.register(parley, { path: '/a' })
    await first.ready()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    // The last instance on the server closes: its connections go after their answers. One
    // registered there after it (a restart) serves afresh.
    await within(first.close(), 5000, 'the first instance to close')
    await second.register(parley, { path: '/b' })
    await second.ready()
    const socket = tls.connect({ host: '127.0.0.1', port, ca: cert, ALPNProtocols: ['http/1.1'] })
    const heard = heardOn(socket)
    teardown.push(() => void socket.destroy())
    await within(new Promise((resolve) => socket.once('secureConnect', resolve)), 5000, 'the TLS connection')
    const count = () => heard.text.split('HTTP/1.1 400').length - 1
    // A GET without sid: the endpoint's 400 at once, on a connection kept alive.
    for (let i = 1; i <= 2; i++) {
      socket.write('GET /b/poll?v=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n')
      await until(() => count() === i || heard.ended, 5000, 'an answer or the end of the connection')
      expect({ answers: count(), ended: heard.ended }).toEqual({ answers: i, ended: false })
    }
  }, 25_000)

  it("serve an instance registered on the server while the last one's close is still under way", async () => {
    const { server, apps, cert } = sharedServer(['/a', '/b'])
    const [first, restarted] = [apps[0]!, apps[1]!]
    await first.register(parley, { path: '/a' })
    const hold = gate()
    // After Parley's own: it runs first, and holds the close after Parley let the connections go,
    // its listeners still on the server.
    first.addHook('onClose', hold.pass)
    await first.ready()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    const closing = first.close()
    teardown.push(async () => {
      hold.open()
      await closing
    })
    await until(hold.reached, 5000, 'the first instance to close')
    await restarted.register(parley, { path: '/b' })
    await restarted.ready()
    // New connections, the restarted instance's: an h2 one, and an HTTP/1.1 one kept alive.
    const h2 = await h2Client(port, cert)
    expect(opened(await within(h2Handshake(h2, '/b'), 5000, 'a handshake over h2'))).toBe(true)
    const socket = tls.connect({ host: '127.0.0.1', port, ca: cert, ALPNProtocols: ['http/1.1'] })
    const heard = heardOn(socket)
    teardown.push(() => void socket.destroy())
    await until(() => socket.alpnProtocol === 'http/1.1' || heard.closed, 5000, 'the TLS connection')
    const count = () => heard.text.split('HTTP/1.1 400').length - 1
    // A GET without sid: the endpoint's 400 at once, on a connection kept alive.
    for (let i = 1; i <= 2; i++) {
      socket.write('GET /b/poll?v=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n')
      await until(() => count() === i || heard.closed, 5000, 'an answer or the end of the connection')
    }
    expect({ answers: count(), closed: heard.closed }).toEqual({ answers: 2, closed: false })
    hold.open()
    await within(closing, 5000, 'the first instance to close')
  }, 35_000)

  it('answer an HTTP/1.1 request pipelined behind one under way at the close, after the server outlived that close', async () => {
    const { restarted, socket, heard, slow, hold, closing } = await restartedAtSlowAnswer()
    const later = gate()
    restarted.get('/b/later', async () => {
      await later.pass()
      return 'later'
    })
    await restarted.ready()
    teardown.push(later.open)
    // Behind the slow answer, which the closing instance counted: the restarted one's to serve,
    // and to answer once the slow one is out.
    socket.write('GET /b/later HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
    await until(later.reached, 5000, 'the pipelined request')
    slow.open()
    const count = () => heard.text.split('HTTP/1.1 200').length - 1
    await until(() => count() === 1 || heard.closed, 5000, 'the slow answer')
    later.open()
    await until(() => count() === 2 || heard.closed, 5000, 'the pipelined answer')
    expect(count()).toBe(2)
    hold.open()
    await within(closing, 5000, 'the first instance to close')
  }, 25_000)

  it('keep an HTTP/1.1 connection open after an answer under way at the close, for the next request, after the server outlived that close', async () => {
    const { restarted, socket, heard, slow, hold, closing } = await restartedAtSlowAnswer()
    await restarted.ready()
    slow.open()
    await until(() => heard.text.includes('HTTP/1.1 200') || heard.closed, 5000, 'the slow answer')
    // Kept alive, the connection is the restarted instance's to serve: its next request there,
    // sent once the slow answer is out, is answered (a GET without sid: the endpoint's 400).
    socket.write('GET /b/poll?v=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
    await until(() => heard.text.includes('HTTP/1.1 400') || heard.closed, 5000, 'the next answer')
    expect({ answered: heard.text.includes('HTTP/1.1 400'), closed: heard.closed }).toEqual({
      answered: true,
      closed: false,
    })
    hold.open()
    await within(closing, 5000, 'the first instance to close')
  })

  it('end an HTTP/1.1 connection after an answer under way at the close when the restart after it failed to register', async () => {
    const { first, second: failed, heard, slow } = await slowAnswerUnderWay()
    await within(first.close(), 5000, 'the first instance to close')
    // A route of the application's where Parley's go: the registration fails, and the instance
    // is not closed (until the test ends).
    failed.get('/b/poll', async () => 'mine')
    await expect(failed.register(parley, { path: '/b' }).ready()).rejects.toThrow()
    slow.open()
    await until(() => heard.text.includes('HTTP/1.1 200') || heard.closed, 5000, 'the slow answer')
    // No instance serves on the server: the connection goes after the answer.
    await until(() => heard.closed, 3000, 'the connection to end after the answer')
  })
})
