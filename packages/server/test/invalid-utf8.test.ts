// Bytes that are not UTF-8, where the protocol carries text: the server cannot read them, so it
// answers as for a packet that is not JSON, on every transport and on every node. An upstream
// POST gets 400 PARLEY_INVALID_JSON and its session ends with CLOSE 'invalid packet'; a handshake
// POST gets the same 400 and opens nothing; a WebSocket text frame gets ws's close 1007 and ends
// the session the same way. Never are the bad bytes replaced (U+FFFD) and the packet used.
import { request } from 'node:http'
import { connect as tcpConnect } from 'node:net'
import websocket from '@fastify/websocket'
import { type ClosePacket, decodeText, PacketType, PROTOCOL_VERSION, WS_SUBPROTOCOL } from '@parley/protocol'
import parley, { type ParleyServerOptions } from '@parley/server'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { Cluster } from './cluster-adapter.js'
import { Directory } from './directory-adapter.js'
import { closeApp, type Started, startServer, until, within } from './helpers.js'
import { Closed, type RawClient, rawConnect } from './raw-client.js'

/** `[5,1,"e",["a…"],0]` with the bytes FF C3 inside its string: no UTF-8 decoder can read it. */
const NOT_UTF8 = Buffer.concat([Buffer.from('[5,1,"e",["a'), Buffer.from([0xff, 0xc3]), Buffer.from('"],0]')])
/** The same packet, not JSON: the outcome every transport gives NOT_UTF8 too. */
const NOT_JSON = '[5,1,"e",["a"],0'

let nodes: Started[] = []
const clients: RawClient[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  await Promise.all(nodes.map((n) => closeApp(n.app)))
  nodes = []
})

interface Node {
  started: Started
  /** The `disconnect` reason of each socket. */
  reasons: string[]
  /** Every `e` event's first argument that reached the application. */
  heard: unknown[]
}

async function serve(options: ParleyServerOptions = {}): Promise<Node> {
  const reasons: string[] = []
  const heard: unknown[] = []
  const started = await startServer(options, (app) => listen(app, reasons, heard))
  nodes.push(started)
  return { started, reasons, heard }
}

function listen(app: FastifyInstance, reasons: string[], heard: unknown[]): void {
  app.parley.on('connection', (socket) => {
    socket.on('e', (arg) => heard.push(arg))
    socket.on('disconnect', (reason) => reasons.push(reason))
  })
}

/**
 * A node whose application registered @fastify/websocket itself, with ws told not to check
 * that text frames are UTF-8 (for routes of its own): Parley shares that registration.
 */
async function serveSkippingUtf8Checks(): Promise<Node> {
  const reasons: string[] = []
  const heard: unknown[] = []
  const app = Fastify({ forceCloseConnections: true })
  await app.register(websocket, { options: { skipUTF8Validation: true } })
  await app.register(parley)
  listen(app, reasons, heard)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (!address || typeof address === 'string') throw new Error('no port')
  const started = { app, base: `http://127.0.0.1:${address.port}/parley` }
  nodes.push(started)
  return { started, reasons, heard }
}

async function connect(...args: Parameters<typeof rawConnect>) {
  const client = await rawConnect(...args)
  clients.push(client)
  return client
}

/** A POST of `body` (bytes as they are) to `url`: its status and its answer's code. */
function post(url: string, body: string | Buffer): Promise<{ status: number; code: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(url), { method: 'POST', headers: { 'content-type': 'text/plain' } })
    req.on('response', (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString()
        resolve({ status: res.statusCode ?? 0, code: text === '' ? undefined : JSON.parse(text).code })
      })
    })
    req.on('error', reject)
    req.end(body)
  })
}

const endpoint = (base: string, transport: 'sse' | 'polling', sid?: string) =>
  `${base}/${transport === 'sse' ? 'sse' : 'poll'}?v=${PROTOCOL_VERSION}${sid ? `&sid=${sid}` : ''}`

/** What became of the session after `input`: the answer, the reason, and what a resume hears. */
async function outcome(node: Node, sid: string, answer: unknown) {
  await until(() => node.reasons.length === 1, 3000, 'the session to end')
  const resumed = await rawConnect('polling', node.started.base, { sid, ack: 0 }).catch((e) => e)
  const close = resumed instanceof Closed ? resumed.packet : undefined
  return { answer, reasons: node.reasons, heard: node.heard, close: close?.reason }
}

const ENDED = { reasons: ['invalid packet'], heard: [], close: 'invalid packet' }

describe.each(['sse', 'polling'] as const)('an upstream POST that is not UTF-8 (%s)', (transport) => {
  it('is refused as one that is not JSON: 400 PARLEY_INVALID_JSON, the session ends', async () => {
    const answers = []
    for (const body of [NOT_JSON, NOT_UTF8]) {
      const node = await serve()
      const client = await connect(transport, node.started.base)
      const answer = await post(endpoint(node.started.base, transport, client.sid), body)
      answers.push(await outcome(node, client.sid, answer))
    }
    const expected = { answer: { status: 400, code: 'PARLEY_INVALID_JSON' }, ...ENDED }
    expect(answers).toEqual([expected, expected])
  })

  it('is refused whole when its bad bytes come after good lines, in a long body', async () => {
    const node = await serve()
    const client = await connect(transport, node.started.base)
    const good = `[5,1,"e",["${'x'.repeat(70_000)}"],0]\n`
    const body = Buffer.concat([Buffer.from(good), NOT_UTF8])
    const answer = await post(endpoint(node.started.base, transport, client.sid), body)
    expect(await outcome(node, client.sid, answer)).toEqual({
      answer: { status: 400, code: 'PARLEY_INVALID_JSON' },
      ...ENDED,
    })
  })

  it('refuses a handshake whose HELLO is not UTF-8 as one that is not JSON, and opens nothing', async () => {
    const node = await serve()
    const hello = Buffer.concat([Buffer.from('[8,{"auth":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}]')])
    expect(await post(endpoint(node.started.base, transport), hello)).toEqual({
      status: 400,
      code: 'PARLEY_INVALID_JSON',
    })
    expect(await post(endpoint(node.started.base, transport), '[8,{"auth":"')).toEqual({
      status: 400,
      code: 'PARLEY_INVALID_JSON',
    })
    expect(node.started.app.parley.socketsCount).toBe(0)
  })
})

describe.each(['over the network', 'through the adapter'] as const)('forwarded %s', (route) => {
  it.each(['sse', 'polling'] as const)(
    'a POST that is not UTF-8 ends the session on its owner as it would there (%s)',
    async (transport) => {
      const directory = new Directory()
      const cluster = new Cluster()
      const adapter = (name: string) =>
        route === 'over the network' ? directory.adapter(name) : cluster.adapter(name)
      const a = await serve({ adapter: adapter('a') })
      const b = await serve({ adapter: adapter('b') })
      const client = await connect(transport, a.started.base)
      const answer = await post(endpoint(b.started.base, transport, client.sid), NOT_UTF8)
      expect(answer).toEqual({ status: 400, code: 'PARLEY_INVALID_JSON' })
      await until(() => a.reasons.length === 1, 5000, 'the session to end on its owner')
      expect(a.reasons).toEqual(['invalid packet'])
      expect(a.heard).toEqual([])
      const close = (await client.next((p) => p.type === PacketType.CLOSE)) as ClosePacket
      expect(close.reason).toBe('invalid packet')
    },
  )
})

/** A WebSocket of the protocol's own, to send text frames of any bytes (ws checks none it sends). */
async function rawWebSocket(base: string): Promise<WebSocket> {
  const ws = new WebSocket(`${base.replace('http', 'ws')}/ws?v=${PROTOCOL_VERSION}`, WS_SUBPROTOCOL)
  await within(
    new Promise((resolve, reject) => {
      ws.once('open', resolve)
      ws.once('error', reject)
    }),
    5000,
    'the WebSocket to open',
  )
  return ws
}

const closeCodeOf = (ws: WebSocket) =>
  within(
    new Promise<number>((resolve) => ws.once('close', resolve)),
    5000,
    'the server to close the WebSocket',
  )

describe.each([
  ['', serve],
  [", where the application's @fastify/websocket skips ws's UTF-8 checks", serveSkippingUtf8Checks],
] as const)('a WebSocket text frame that is not UTF-8%s', (_, serveOne) => {
  it('ends the session as one that is not JSON: closed with 1007, a resume hears why', async () => {
    const answers = []
    for (const frame of [Buffer.from(NOT_JSON), NOT_UTF8]) {
      const node = await serveOne()
      const ws = await rawWebSocket(node.started.base)
      const opened = within(
        new Promise<string>((resolve) => ws.once('message', (data) => resolve(String(data)))),
        5000,
        'the answer to the HELLO',
      )
      ws.send('[8,{}]')
      const open = decodeText(await opened)
      if (!open.ok || open.packet.type !== PacketType.OPEN) throw new Error('no OPEN')
      const sid = open.packet.sid
      const closed = closeCodeOf(ws)
      ws.send(frame, { binary: false })
      const code = await closed
      answers.push(await outcome(node, sid, code))
    }
    // Invalid JSON gets a CLOSE packet, then 1000; ws has closed with 1007 before any could go.
    expect(answers).toEqual([
      { answer: 1000, ...ENDED },
      { answer: 1007, ...ENDED },
    ])
  })

  it('refuses the handshake when it is the HELLO: 1007, and opens nothing', async () => {
    const node = await serveOne()
    const ws = await rawWebSocket(node.started.base)
    const closed = closeCodeOf(ws)
    ws.send(Buffer.from([0x5b, 0x38, 0x2c, 0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d, 0x5d]), {
      binary: false,
    })
    expect(await closed).toBe(1007)
    expect(node.started.app.parley.socketsCount).toBe(0)
  })
})

/** A client frame (FIN, `opcode`) of a short payload, masked with zeros: the bytes as they are. */
const frameOf = (opcode: number, payload: Buffer) =>
  Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length, 0, 0, 0, 0]), payload])

describe('a WebSocket frame that breaks the protocol (ws closes with 1002)', () => {
  it('ends the session as a packet that does not decode does', async () => {
    const node = await serve()
    const { port } = new URL(node.started.base)
    const socket = tcpConnect(Number(port), '127.0.0.1')
    let seen = Buffer.alloc(0)
    socket.on('data', (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk])
    })
    socket.write(
      [
        `GET /parley/ws?v=${PROTOCOL_VERSION} HTTP/1.1`,
        `Host: 127.0.0.1:${port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
        'Sec-WebSocket-Version: 13',
        `Sec-WebSocket-Protocol: ${WS_SUBPROTOCOL}`,
        '',
        '',
      ].join('\r\n'),
    )
    await until(() => seen.includes('\r\n\r\n'), 3000, 'the 101')
    socket.write(frameOf(1, Buffer.from('[8,{}]')))
    await until(() => node.started.app.parley.socketsCount === 1, 3000, 'the session')
    // Opcode 3 is reserved (RFC 6455 5.2).
    socket.write(frameOf(3, Buffer.from('x')))
    await until(() => node.reasons.length === 1, 3000, 'the session to end')
    expect(node.reasons).toEqual(['invalid packet'])
    // ws's close frame: 1002.
    await until(() => seen.includes(Buffer.from([0x88, 0x02, 0x03, 0xea])), 3000, 'close 1002')
    socket.destroy()
  })
})

describe('a WebSocket text frame that is not UTF-8, relayed to the owner of its session', () => {
  it('ends the session on its owner as it would there: 1007, invalid packet', async () => {
    const directory = new Directory()
    const a = await serve({ adapter: directory.adapter('a') })
    const b = await serve({ adapter: directory.adapter('b') })
    const first = await rawConnect('websocket', a.started.base)
    first.close()
    const ws = await rawWebSocket(b.started.base)
    const opened = within(
      new Promise<string>((resolve) => ws.once('message', (data) => resolve(String(data)))),
      5000,
      'the answer to the HELLO',
    )
    ws.send(`[8,{"sid":"${first.sid}","ack":0}]`)
    const open = decodeText(await opened)
    expect(open.ok && open.packet).toMatchObject({ type: PacketType.OPEN, recovered: true })
    const closed = closeCodeOf(ws)
    ws.send(NOT_UTF8, { binary: false })
    expect(await closed).toBe(1007)
    await until(() => a.reasons.length === 1, 3000, 'the session to end on its owner')
    expect(a.reasons).toEqual(['invalid packet'])
    expect(a.heard).toEqual([])
    expect(b.reasons).toEqual([])
  })
})
