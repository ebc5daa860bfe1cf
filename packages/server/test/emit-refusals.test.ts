// The server refuses, at the call site and with a coded error, to send what a conforming client
// must refuse: nothing is numbered, kept or sent, and the session goes on.
import { type EventPacket, type Packet, PacketType, type TransportName, WireLimits } from '@parley/protocol'
import type { ServerSocket } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { closedAfterEach } from './closed-after-each.js'
import { startServer, until } from './helpers.js'
import { rawConnect } from './raw-client.js'

const TRANSPORTS = ['websocket', 'sse', 'polling'] as const
const MAX_PAYLOAD = 2000

const opened = closedAfterEach()

async function one(transport: TransportName) {
  const sockets: ServerSocket[] = []
  opened.started = await startServer({ maxPayload: MAX_PAYLOAD }, (app) => {
    app.parley.on('connection', (s) => {
      sockets.push(s)
    })
  })
  const client = await rawConnect(transport, opened.started.base)
  opened.clients.push(client)
  await until(() => sockets.length === 1)
  return { app: opened.started.app, socket: sockets[0]!, client }
}

const isEvent = (name: string) => (p: Packet) => p.type === PacketType.EVENT && p.name === name
const coded = (code: string) => expect.objectContaining({ code })

/** Arguments a client must refuse, with the code the server throws for them. */
const REFUSED: [string, unknown, string][] = [
  ['too large', 'x'.repeat(MAX_PAYLOAD), 'PARLEY_PAYLOAD_TOO_LARGE'],
  // The encoder stops at the wire's depth limit itself (its walk also stops cycles), so a value
  // too deep for the wire does not encode: the same limit, the encoder's code.
  [
    'too deep',
    JSON.parse(`${'['.repeat(WireLimits.maxDepth + 2)}${']'.repeat(WireLimits.maxDepth + 2)}`),
    'PARLEY_UNSERIALIZABLE',
  ],
  ['a __proto__ key', JSON.parse('{"__proto__":{"admin":true}}'), 'PARLEY_FORBIDDEN_KEY'],
  ['a constructor key', { constructor: 1 }, 'PARLEY_FORBIDDEN_KEY'],
]

describe.each(TRANSPORTS)('over %s', (transport) => {
  it('throws from socket.emit, volatile and timeout emits, and uses no sequence number', async () => {
    const { socket, client } = await one(transport)
    for (const [, arg, code] of REFUSED) {
      expect(() => socket.emit('bad', arg as never)).toThrow(coded(code))
      expect(() => socket.volatile.emit('bad', arg as never)).toThrow(coded(code))
      expect(() => socket.timeout(1000).emit('bad', arg as never, () => {})).toThrow(coded(code))
      await expect(socket.emitWithAck('bad', arg as never)).rejects.toMatchObject({ code })
    }
    // A refusal for size names the event, the size and the limit.
    expect(() => socket.emit('bad', 'x'.repeat(MAX_PAYLOAD))).toThrow(
      expect.objectContaining({
        message: expect.stringMatching(
          /^event "bad": the packet is \d+ bytes, past maxPayload \(2000 bytes\)$/,
        ),
      }),
    )
    expect(() => socket.emit('x'.repeat(WireLimits.maxEventNameLength + 1))).toThrow(
      coded('PARLEY_INVALID_EVENT_NAME'),
    )
    // The next event is number 1 and nothing else came; the refused waits are not pending.
    socket.emit('ok', 1)
    expect(await client.next(isEvent('ok'))).toMatchObject({ seq: 1 })
    expect(client.received.filter(isEvent('bad'))).toEqual([])
    const answer = socket.emitWithAck('q')
    const asked = (await client.next(isEvent('q'))) as EventPacket
    expect(asked.seq).toBe(2)
    await client.send({ type: PacketType.REPLY, seq: 1, ackId: asked.ackId, args: ['a'] })
    expect(await answer).toBe('a')
    expect(socket.connected).toBe(true)
  })

  it('throws from a broadcast, once, before any socket gets it', async () => {
    const { app, socket, client } = await one(transport)
    socket.join('room')
    expect(() => app.parley.to('room').emit('x'.repeat(300) as never, 1 as never)).toThrow(
      coded('PARLEY_INVALID_EVENT_NAME'),
    )
    expect(() => app.parley.emit('connect' as never)).toThrow(coded('PARLEY_RESERVED_EVENT_NAME'))
    for (const [, arg, code] of REFUSED) {
      expect(() => app.parley.to('room').emit('bad' as never, arg as never)).toThrow(coded(code))
      expect(() => app.parley.volatile.emit('bad' as never, arg as never)).toThrow(coded(code))
      expect(() => socket.broadcast.emit('bad' as never, arg as never)).toThrow(coded(code))
      await expect(app.parley.timeout(1000).emitWithAck('bad' as never, arg)).rejects.toMatchObject({ code })
    }
    // An empty room too: the call fails the same way whoever listens.
    expect(() => app.parley.to('nobody').emit('bad' as never, { constructor: 1 } as never)).toThrow(
      coded('PARLEY_FORBIDDEN_KEY'),
    )
    app.parley.to('room').emit('ok' as never, 1 as never)
    expect(await client.next(isEvent('ok'))).toMatchObject({ seq: 1 })
    expect(client.received.filter(isEvent('bad'))).toEqual([])
  })

  it('answers a reply the client would refuse with ERROR PARLEY_HANDLER_ERROR', async () => {
    const { socket, client } = await one(transport)
    socket.on('ask', (what: string, ack: (reply: unknown) => void) => {
      const arg = REFUSED.find(([name]) => name === what)?.[1]
      ack(arg)
    })
    for (const [what] of REFUSED) {
      await client.send({ type: PacketType.EVENT, seq: 0, name: 'ask', args: [what], ackId: 7 })
      expect(await client.next((p) => p.type === PacketType.ERROR && p.ackId === 7)).toMatchObject({
        code: 'PARLEY_HANDLER_ERROR',
        message: 'the handler failed',
      })
    }
    expect(client.received.filter((p) => p.type === PacketType.REPLY)).toEqual([])
    expect(socket.connected).toBe(true)
  })
})

describe('event schemas', () => {
  it('refuse a name no client can send, by the same rule as the wire', async () => {
    opened.started = await startServer()
    const app = opened.started.app
    expect(() => app.parley.schemas({ ['x'.repeat(WireLimits.maxEventNameLength + 1)]: true })).toThrow(
      TypeError,
    )
    expect(() => app.parley.schemas({ disconnect: true } as never)).toThrow(TypeError)
    expect(() => app.parley.schemas({ ['x'.repeat(WireLimits.maxEventNameLength)]: true })).not.toThrow()
  })
})
