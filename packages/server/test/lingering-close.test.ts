// An answer sent before its request's body ended (Fastify's handlerTimeout, maxPayload) closes
// the connection: the client may still send the rest of its body. Were the connection destroyed
// at once, what the client sends after would be answered with a reset, and a reset makes the
// client's system throw away what it had not read yet, the answer included: a busy client (a
// loaded process) reported a lost connection instead of the coded answer. The server lingers:
// it reads and throws away the rest for a while, and the answer reaches the client. Only for a
// while (LINGER_MS) and so much (LINGER_BYTES): a client that keeps sending is cut off at either.
import { once } from 'node:events'
import type { ServerResponse } from 'node:http'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { type Socket as ClientSocket, connect as connectClient } from '@parley/client'
import { encodeText, PacketType } from '@parley/protocol'
import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { LINGER_BYTES } from '../src/http/lingering-close.js'
import { closeApp, type Started, sleep, startServer, until } from './helpers.js'
import { type RawClient, rawConnect } from './raw-client.js'
import { head } from './raw-http.js'
import { heldBody } from './split-fetch.js'

/**
 * How long the server lingers: LINGER_MS (2 s) unless a test of the bounds sets its own, so that
 * one of the time bound waits no 2 s, and one of the byte bound cannot be cut by the time.
 */
const lingering = vi.hoisted(() => ({ ms: undefined as number | undefined }))
vi.mock('../src/http/lingering-close.js', async (original) => {
  const actual = await original<typeof import('../src/http/lingering-close.js')>()
  return { ...actual, lingerOnClose: (res: ServerResponse) => actual.lingerOnClose(res, lingering.ms) }
})

let started: Started | undefined
const clients: RawClient[] = []
const late: LateReader[] = []
const parleyClients: ClientSocket[] = []
const proxies: Server[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  for (const c of parleyClients.splice(0)) c.disconnect()
  for (const p of proxies.splice(0)) p.close()
  for (const l of late.splice(0)) l.socket.destroy()
  await closeApp(started?.app)
  started = undefined
  lingering.ms = undefined
})

/**
 * A client on a bare TCP connection that reads nothing of it until `read()`, as a busy process
 * would not: what the server sends waits in the client's system meanwhile. Its writes go out
 * at once; the first error it meets (a write after a reset) is kept.
 */
class LateReader {
  readonly socket: Socket
  /** What came, filled as it is read. */
  readonly #received: Buffer[]
  error: string | undefined
  readonly #closed: Promise<void>

  private constructor(socket: Socket, received: Buffer[]) {
    this.socket = socket
    this.#received = received
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.error ??= err.code
    })
    this.#closed = new Promise((resolve) => socket.once('close', () => resolve()))
  }

  /** `keepSending`: the client's side stays open after the server's ends (it may send on). */
  static async open(base: string, keepSending = false): Promise<LateReader> {
    const received: Buffer[] = []
    // With `onread`, pausing the socket stops reading from the system itself (not only the
    // stream's events): nothing of the answer is taken off the connection before `read()`.
    const socket = connect({
      port: Number(new URL(base).port),
      host: '127.0.0.1',
      allowHalfOpen: keepSending,
      onread: {
        buffer: Buffer.alloc(64 * 1024),
        callback: (size, buffer) => {
          received.push(Buffer.from(buffer.subarray(0, size)))
          return true
        },
      },
    })
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    })
    socket.pause()
    const reader = new LateReader(socket, received)
    late.push(reader)
    return reader
  }

  write(text: string): void {
    this.socket.write(text)
  }

  /** Reads at last: everything the connection holds, once the server closed it. */
  async read(): Promise<{ status: number; connection: string | undefined; body: unknown }> {
    this.socket.resume()
    await Promise.race([this.#closed, sleep(3000)])
    const text = Buffer.concat(this.#received).toString('utf8')
    const at = text.indexOf('\r\n\r\n')
    return {
      status: Number(text.split(' ')[1] ?? 0),
      connection: /\r\nconnection: (\S+)/i.exec(text.slice(0, at))?.[1],
      body: at < 0 ? undefined : JSON.parse(text.slice(at + 4)),
    }
  }
}

/**
 * A TCP proxy to `base`'s server for a client whose process reads late: what the server sends
 * is held until `holdMs` ms after the client last sent something, then passed on, its end too.
 * A reset from the server reaches the client as a reset, and what was held is lost, as the
 * client's own system would lose it. Its base URL.
 */
async function lateReadingProxy(base: string, holdMs: number): Promise<string> {
  const target = new URL(base)
  const proxy = createServer((client) => {
    // Half-open: the client may send the rest of its body after the server's side ended.
    const upstream = connect({ port: Number(target.port), host: '127.0.0.1', allowHalfOpen: true })
    const held: Buffer[] = []
    let ended = false
    let release: NodeJS.Timeout | undefined
    const pass = () => {
      for (const chunk of held.splice(0)) client.write(chunk)
      if (ended) client.end()
    }
    // What the client sent goes on in order, each piece in two writes, as a client sends a
    // chunked body's last chunk and its end: the second meets the reset the first brought, if
    // any, and fails.
    let sending = Promise.resolve()
    client.on('data', (chunk: Buffer) => {
      sending = sending.then(async () => {
        upstream.write(chunk.subarray(0, -1))
        await sleep(10)
        upstream.write(chunk.subarray(-1))
      })
      clearTimeout(release)
      release = setTimeout(pass, holdMs)
    })
    client.on('end', () => void sending.then(() => upstream.end()))
    client.on('error', () => upstream.destroy())
    client.on('close', () => clearTimeout(release))
    upstream.on('data', (chunk: Buffer) => void held.push(chunk))
    upstream.on('end', () => {
      ended = true
    })
    upstream.on('error', () => {
      held.length = 0
      client.resetAndDestroy()
    })
  })
  proxies.push(proxy)
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  const { port } = proxy.address() as { port: number }
  return `http://127.0.0.1:${port}${target.pathname}`
}

/** A POST's head; its body comes as the test writes it. */
const post = (path: string, headers: Record<string, string>) =>
  head('POST', path, { 'Content-Type': 'text/plain', ...headers })

/** Lets the server answer (and, before this change, destroy the connection). */
const answered = () => sleep(300)

/**
 * A POST to `path` with `body` from a client that reads late: its first two bytes, then, once
 * the server answered, the rest in two writes (as a chunked body's last chunk and its end; were
 * the connection destroyed, the second would meet the reset the first brought, and the client
 * drop the connection, its answer unread). What the client reads at last.
 */
async function postAnsweredEarly(client: LateReader, path: string, body: string) {
  client.write(post(path, { 'Content-Length': String(body.length) }))
  client.write(body.slice(0, 2))
  await answered()
  client.write(body.slice(2, 4))
  await sleep(50)
  client.write(body.slice(4))
  await sleep(50)
  return client.read()
}

describe('an answer sent before the body ended reaches a client that reads it late', () => {
  it("Fastify's handlerTimeout on a handshake: 503 PARLEY_HANDSHAKE_TIMEOUT, and no session from the body's rest", async () => {
    started = await startServer({}, undefined, { handlerTimeout: 100 })
    const connections: string[] = []
    started.app.parley.on('connection', (socket) => void connections.push(socket.id))
    const hello = `${encodeText({ type: PacketType.HELLO })}\n`
    const client = await LateReader.open(started.base)
    expect(await postAnsweredEarly(client, '/parley/poll?v=1', hello)).toMatchObject({
      status: 503,
      connection: 'close',
      body: { code: 'PARLEY_HANDSHAKE_TIMEOUT' },
    })
    expect(client.error).toBeUndefined()
    // The body came whole after the answer: it opened nothing.
    expect(connections).toEqual([])
    expect(started.app.parley.sockets.size).toBe(0)
  })

  it("Fastify's handlerTimeout on an upstream POST: 408, and none of the body's packets used", async () => {
    started = await startServer({}, undefined, { handlerTimeout: 100 })
    const got: unknown[] = []
    started.app.parley.on('connection', (socket) => socket.on('up', (n: unknown) => void got.push(n)))
    const c = await rawConnect('polling', started.base)
    clients.push(c)
    const body = `${encodeText({ type: PacketType.EVENT, seq: 1, name: 'up', args: [1], ackId: 0 })}\n`
    const client = await LateReader.open(started.base)
    expect(await postAnsweredEarly(client, `/parley/poll?v=1&sid=${c.sid}`, body)).toMatchObject({
      status: 408,
      body: { code: 'PARLEY_BAD_REQUEST' },
    })
    expect(client.error).toBeUndefined()
    // The client sends them again: taken from this body too, they would come twice.
    expect(await c.send({ type: PacketType.EVENT, seq: 1, name: 'up', args: [2], ackId: 0 })).toBe(204)
    await until(() => got.length > 0, 3000, 'the packet sent again')
    expect(got).toEqual([2])
  })

  it('a chunked body past maxPayload: 413 PARLEY_PAYLOAD_TOO_LARGE while the client keeps sending', async () => {
    started = await startServer({ maxPayload: 256 })
    const client = await LateReader.open(started.base)
    client.write(post('/parley/poll?v=1', { 'Transfer-Encoding': 'chunked' }))
    const chunk = `${(300).toString(16)}\r\n${'x'.repeat(300)}\r\n`
    client.write(chunk)
    await answered()
    client.write(chunk)
    await sleep(50)
    client.write('0\r\n\r\n')
    await sleep(50)
    expect(await client.read()).toMatchObject({ status: 413, body: { code: 'PARLEY_PAYLOAD_TOO_LARGE' } })
    expect(client.error).toBeUndefined()
  })

  it("the real client, reading late, is told PARLEY_HANDSHAKE_TIMEOUT by Fastify's handlerTimeout", async () => {
    // The handshake's body comes in two parts, the rest once the server has sent its answer
    // (which the client reads late): however late a loaded machine runs the handlerTimeout.
    let answered = () => {}
    const answer = new Promise<void>((resolve) => {
      answered = resolve
    })
    const setup = (app: FastifyInstance) => void app.addHook('onResponse', async () => answered())
    started = await startServer({}, setup, { handlerTimeout: 100 })
    const base = await lateReadingProxy(started.base, 100)
    const slow: typeof fetch = (input, init) =>
      fetch(
        input,
        heldBody(init, () => answer),
      )
    const client = connectClient(base, { transports: ['polling'], reconnection: false, fetch: slow })
    parleyClients.push(client)
    const code = await new Promise<string>((resolve) => client.once('connect_error', (e) => resolve(e.code)))
    expect(code).toBe('PARLEY_HANDSHAKE_TIMEOUT')
  })
})

describe('the lingering after an early answer is bounded', () => {
  /**
   * A server (maxPayload 256) that has answered a chunked POST from a client that keeps its side
   * open (413: the body passed maxPayload), and the server's side of that connection. The client
   * reads what comes, and may send on.
   */
  async function answeredEarly() {
    started = await startServer({ maxPayload: 256 })
    const accepted = new Promise<Socket>((resolve) => started!.app.server.once('connection', resolve))
    const client = await LateReader.open(started.base, true)
    const server = await accepted
    client.write(post('/parley/poll?v=1', { 'Transfer-Encoding': 'chunked' }))
    client.write(`${(300).toString(16)}\r\n${'x'.repeat(300)}\r\n`)
    // The answer came, and the end of the server's side: the server lingers from then on.
    const ended = once(client.socket, 'end')
    client.socket.resume()
    await ended
    // What the server had read when it answered: what it reads from now on it throws away.
    return { client, server, before: server.bytesRead }
  }

  /** A chunk of a chunked body of `size` bytes. */
  const chunkOf = (size: number) => `${size.toString(16)}\r\n${'x'.repeat(size)}\r\n`

  it('cuts a client that keeps sending once the server has thrown LINGER_BYTES away', async () => {
    // Far longer than the test may run: only the bytes can cut it.
    lingering.ms = 60_000
    const { client, server, before } = await answeredEarly()
    const chunk = chunkOf(64 * 1024)
    // 2 MB, far more than the server throws away: it cuts the connection before the client is through.
    let sent = 0
    for (; sent < 32 && !client.socket.destroyed; sent++) {
      client.write(chunk)
      await sleep(5)
    }
    await until(() => server.destroyed && client.socket.destroyed, 5000, 'the connection cut')
    expect(sent).toBeLessThan(32)
    // It read past the bound before it cut, and not much more (one read at most).
    const thrownAway = server.bytesRead - before
    expect(thrownAway).toBeGreaterThan(LINGER_BYTES)
    expect(thrownAway).toBeLessThan(LINGER_BYTES + 2 * chunk.length)
  })

  it('cuts a client that keeps sending a little once its time is over', async () => {
    lingering.ms = 500
    const { client, server, before } = await answeredEarly()
    // A few bytes every 20 ms (3 s at most), far below LINGER_BYTES, for as long as the connection lasts.
    const chunk = chunkOf(16)
    let sent = 0
    for (; sent < 150 && !client.socket.destroyed; sent++) {
      client.write(chunk)
      await sleep(20)
    }
    expect(sent).toBeLessThan(150)
    await until(() => server.destroyed, 3000, 'the connection cut')
    // The server read on after its answer (it lingered), and cut for the time, not the bytes.
    const thrownAway = server.bytesRead - before
    expect(thrownAway).toBeGreaterThan(0)
    expect(thrownAway).toBeLessThan(LINGER_BYTES)
  })
})
