// What the server cannot send names the event it concerns, as the client's own errors do:
// `event "price": ...` for an emit or a broadcast, `reply to "quote": ...` for a handler's reply.
// And a packet the server refuses from a client names its event in the CLOSE its client gets and
// in the server's log, read from the packet's head. The codes and details stay what they were
// (users match on them). Real client against the real server; raw clients for what a real client
// never sends.
import { connect, type TransportName } from '@parley/client'
import { ErrorCode, type Packet, PacketType, WireLimits } from '@parley/protocol'
import type { ServerSocket } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { closedAfterEach } from './closed-after-each.js'
import { startServer, until, within } from './helpers.js'
import { rawConnect } from './raw-client.js'

const opened = closedAfterEach()

const LIMIT = 2000
const TRANSPORTS: TransportName[] = ['websocket', 'sse', 'polling']

/** `levels` arrays around 1. */
const nest = (levels: number): unknown => (levels === 0 ? 1 : [nest(levels - 1)])

/** Each value the server cannot send, its code, and the message after the event's name. */
const REFUSED: [what: string, make: () => unknown, code: string, rest: RegExp][] = [
  [
    'a payload past maxPayload',
    () => 'x'.repeat(2 * LIMIT),
    ErrorCode.PAYLOAD_TOO_LARGE,
    new RegExp(`^the packet is \\d+ bytes, past maxPayload \\(${LIMIT} bytes\\)$`),
  ],
  [
    'arguments nested too deep',
    () => nest(WireLimits.maxDepth + 2),
    ErrorCode.UNSERIALIZABLE,
    /^payload is nested deeper than 64 levels \(or is cyclic\)$/,
  ],
  [
    'what a toJSON gives, nested too deep',
    () => ({ toJSON: () => nest(WireLimits.maxDepth + 2) }),
    ErrorCode.TOO_DEEP,
    /^the payload is nested deeper than 64 levels$/,
  ],
  [
    'a constructor key',
    () => JSON.parse('{"constructor":1}'),
    ErrorCode.FORBIDDEN_KEY,
    /^packet holds a "__proto__" or "constructor" key$/,
  ],
  [
    'a __proto__ key',
    () => JSON.parse('{"__proto__":{"admin":true}}'),
    ErrorCode.FORBIDDEN_KEY,
    /^packet holds a "__proto__" or "constructor" key$/,
  ],
  [
    'a BigInt',
    () => ({ n: 10n }),
    ErrorCode.UNSERIALIZABLE,
    /^payload cannot be serialised to JSON \(.*BigInt.*\)$/,
  ],
]

/** An error with `code` whose message is `prefix` followed by what `rest` matches. */
function named(prefix: string, code: string, rest: RegExp) {
  return expect.objectContaining({
    code,
    message: expect.stringMatching(
      new RegExp(`^${prefix.replace(/[()"]/g, '\\$&')}${rest.source.replace(/^\^/, '')}`),
    ),
  })
}

/** What `f` throws, or undefined. */
function thrown(f: () => unknown): unknown {
  try {
    f()
  } catch (error) {
    return error
  }
  return undefined
}

interface Line {
  level: number
  msg: string
  event?: string
  err?: { message: string; code?: string }
}

/** A server with maxPayload LIMIT that logs at warn into `lines`, its sockets in `sockets`. */
async function server() {
  const lines: Line[] = []
  const sockets: ServerSocket[] = []
  const logger = { level: 'warn', stream: { write: (line: string) => void lines.push(JSON.parse(line)) } }
  opened.started = await startServer(
    { maxPayload: LIMIT, pingInterval: 10_000, pingTimeout: 10_000 },
    (app) => {
      app.parley.on('connection', (socket) => {
        sockets.push(socket)
        socket.join('room')
      })
    },
    { logger },
  )
  return { app: opened.started.app, base: opened.started.base, lines, sockets }
}

/** A Parley client on `transport` only, connected. */
async function client(base: string, transport: TransportName) {
  const socket = connect(base, { transports: [transport], reconnection: false })
  opened.parleyClients.push(socket)
  await within(new Promise<void>((resolve) => socket.once('connect', () => resolve())), 5000, 'connect')
  return socket
}

describe.each(TRANSPORTS)('over %s', (transport) => {
  it('names the event in the error of each kind of socket emit the server cannot send, codes and details kept', async () => {
    const { base, sockets } = await server()
    const got: unknown[] = []
    const socket = await client(base, transport)
    socket.on('price', (value: unknown) => got.push(value))
    await until(() => sockets.length === 1, 3000, 'the server socket')
    const serverSocket = sockets[0]!
    for (const [, make, code, rest] of REFUSED) {
      const error = named('event "price": ', code, rest)
      expect(thrown(() => serverSocket.emit('price', make() as never))).toEqual(error)
      expect(thrown(() => serverSocket.volatile.emit('price', make() as never))).toEqual(error)
      expect(thrown(() => serverSocket.timeout(1000).emit('price', make() as never, () => {}))).toEqual(error)
      await expect(serverSocket.emitWithAck('price', make() as never)).rejects.toEqual(error)
    }
    // The size's details are those the unnamed error had.
    expect(thrown(() => serverSocket.emit('price', 'x'.repeat(2 * LIMIT) as never))).toMatchObject({
      details: { limit: LIMIT, size: expect.any(Number) },
    })
    serverSocket.emit('price', 'fine' as never)
    await until(() => got.length > 0, 3000, 'the next emit')
    expect(got).toEqual(['fine'])
    expect(socket.connected).toBe(true)
  })

  it('names the event in the error of each kind of broadcast the server cannot send', async () => {
    const { app, base, sockets } = await server()
    const got: unknown[] = []
    const socket = await client(base, transport)
    socket.on('news', (value: unknown) => got.push(value))
    await until(() => sockets.length === 1, 3000, 'the server socket')
    const serverSocket = sockets[0]!
    for (const [, make, code, rest] of REFUSED) {
      const error = named('event "news": ', code, rest)
      expect(thrown(() => app.parley.emit('news' as never, make() as never))).toEqual(error)
      expect(thrown(() => app.parley.to('room').emit('news' as never, make() as never))).toEqual(error)
      expect(thrown(() => app.parley.volatile.emit('news' as never, make() as never))).toEqual(error)
      expect(thrown(() => serverSocket.broadcast.emit('news' as never, make() as never))).toEqual(error)
      await expect(app.parley.timeout(1000).emitWithAck('news' as never, make())).rejects.toEqual(error)
    }
    app.parley.to('room').emit('news' as never, 'fine' as never)
    await until(() => got.length > 0, 3000, 'the next broadcast')
    expect(got).toEqual(['fine'])
  })

  it('names the event a reply answers in what the server logs of a reply it cannot send', async () => {
    const { base, lines, sockets } = await server()
    const socket = await client(base, transport)
    await until(() => sockets.length === 1, 3000, 'the server socket')
    let value: () => unknown = () => 1
    sockets[0]!.on('quote', (ack: (reply: unknown) => void) => ack(value()))
    for (const [what, make, code, rest] of REFUSED) {
      value = make
      const before = lines.length
      // The client gets what it got: the handler failed.
      await expect(socket.timeout(3000).emitWithAck('quote')).rejects.toMatchObject({
        code: ErrorCode.HANDLER_ERROR,
        message: 'the handler failed',
      })
      // One burst per event: the first reply that failed is the one logged at once.
      if (what === REFUSED[0]![0]) {
        await until(() => lines.length > before, 3000, 'the log line')
        const line = lines.find((l) => l.msg.includes('reply could not be sent'))
        expect(line?.event).toBe('quote')
        expect(line?.err).toEqual(named('reply to "quote": ', code, rest))
      }
    }
    expect(socket.connected).toBe(true)
  })
})

/** A client's packet that the server refuses, and the code it is refused with. */
const INCOMING: [what: string, text: string, code: string, message: string][] = [
  [
    'nested too deep',
    `[5,1,"chat",[${'['.repeat(WireLimits.maxDepth + 1)}${']'.repeat(WireLimits.maxDepth + 1)}],0]`,
    ErrorCode.TOO_DEEP,
    'packet is nested deeper than 64 levels',
  ],
  [
    'a __proto__ key',
    '[5,1,"chat",[{"__proto__":{"admin":true}}],0]',
    ErrorCode.FORBIDDEN_KEY,
    'packet holds a "__proto__" or "constructor" key',
  ],
  ['not JSON past its name', '[5,1,"chat",[{"a":1}],0', ErrorCode.INVALID_JSON, 'packet is not valid JSON'],
]

describe.each(TRANSPORTS)('a packet the server refuses, over %s', (transport) => {
  it.each(INCOMING)(
    'names its event in the CLOSE and the log line (%s)',
    async (_what, text, code, message) => {
      const { base, lines } = await server()
      const raw = await rawConnect(transport, base)
      opened.clients.push(raw)
      // A POST answers 400 with the decoder's code and message; a WebSocket hears it in the CLOSE.
      const status = await raw.sendRaw(text)
      const words = `${code}: event "chat": ${message}`
      if (transport === 'websocket') {
        const close = await raw.next((p: Packet) => p.type === PacketType.CLOSE, 3000)
        expect(close).toMatchObject({ reason: 'invalid packet', message: words })
      } else expect(status).toBe(400)
      await until(() => lines.some((l) => l.msg.includes('for invalid packets')), 3000, 'the log line')
      expect(lines.find((l) => l.msg.includes('for invalid packets'))?.msg).toContain(`the first: ${words}`)
    },
  )

  it('names nothing for a packet whose head is not an event it can read', async () => {
    const { base, lines } = await server()
    const raw = await rawConnect(transport, base)
    opened.clients.push(raw)
    await raw.sendRaw(`[5,1,"${'x'.repeat(WireLimits.maxEventNameLength + 1)}",[{"__proto__":1}],0]`)
    await until(() => lines.some((l) => l.msg.includes('for invalid packets')), 3000, 'the log line')
    expect(lines.find((l) => l.msg.includes('for invalid packets'))?.msg).not.toContain('event "')
  })
})

it('names the event of a binary WebSocket frame refused for what it holds, from its header', async () => {
  const { base, lines } = await server()
  const raw = await rawConnect('websocket', base)
  opened.clients.push(raw)
  const header = new TextEncoder().encode('[5,1,"upload",[{"constructor":null}],0,[[[0,"constructor"],0,0]]]')
  const frame = new Uint8Array(4 + header.length + 4 + 3)
  const view = new DataView(frame.buffer)
  view.setUint32(0, header.length)
  frame.set(header, 4)
  view.setUint32(4 + header.length, 3)
  await raw.sendRaw(frame)
  const close = await raw.next((p: Packet) => p.type === PacketType.CLOSE, 3000)
  expect(close).toMatchObject({
    reason: 'invalid packet',
    message: expect.stringMatching(/^PARLEY_FORBIDDEN_KEY: event "upload": /),
  })
  await until(() => lines.some((l) => l.msg.includes('for invalid packets')), 3000, 'the log line')
})
