// maxPayload at its edge, on every transport: a WebSocket message or a POST body of exactly
// maxPayload bytes is taken, one byte more ends the session with 'payload too large' (close
// 1009, or 413 PARLEY_PAYLOAD_TOO_LARGE). Bytes count, not characters: text of two-byte
// characters passes the limit in bytes while its length in UTF-16 code units is under it.
import { PacketType } from '@parley/protocol'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { closeApp, type Started, startServer, until } from './helpers.js'
import { rawConnect } from './raw-client.js'

const MAX_PAYLOAD = 1000
const TRANSPORTS = ['websocket', 'sse', 'polling'] as const

/** An EVENT `e` asking for reply 7, whose text is exactly `bytes` bytes of UTF-8, made of `fill`. */
function eventOf(bytes: number, fill: 'x' | 'é'): string {
  const head = '[5,1,"e",["'
  const tail = '"],7]'
  const room = bytes - head.length - tail.length
  const text = fill === 'x' ? 'x'.repeat(room) : `${'é'.repeat(Math.floor(room / 2))}${room % 2 ? 'x' : ''}`
  const line = `${head}${text}${tail}`
  expect(Buffer.byteLength(line)).toBe(bytes)
  return line
}

describe.each(TRANSPORTS)('maxPayload over %s', (transport) => {
  let started: Started
  /** The length of each `e` event's text the handler got, and each disconnect reason. */
  const got: number[] = []
  const reasons: string[] = []

  beforeAll(async () => {
    started = await startServer({ maxPayload: MAX_PAYLOAD }, (app) => {
      app.parley.on('connection', (socket) => {
        socket.on('disconnect', (reason) => reasons.push(reason))
        socket.on('e', (text: string, ack?: (n: number) => void) => {
          got.push(text.length)
          ack?.(text.length)
        })
      })
    })
  })

  afterAll(async () => {
    await closeApp(started.app)
  })

  it.each(['x', 'é'] as const)('takes a packet of exactly maxPayload bytes (%s)', async (fill) => {
    const c = await rawConnect(transport, started.base)
    try {
      const line = eventOf(MAX_PAYLOAD, fill)
      const status = await c.sendRaw(line)
      expect(status).toBe(transport === 'websocket' ? 101 : 204)
      const reply = await c.next((p) => p.type === PacketType.REPLY)
      expect(reply).toMatchObject({ ackId: 7, args: [JSON.parse(line)[3][0].length] })
    } finally {
      c.close()
    }
  })

  it.each(['x', 'é'] as const)(
    'ends the session at one byte more (%s), and serves the next client',
    async (fill) => {
      const c = await rawConnect(transport, started.base)
      const before = reasons.length
      try {
        const line = eventOf(MAX_PAYLOAD + 1, fill)
        if (fill === 'é') expect(line.length).toBeLessThanOrEqual(MAX_PAYLOAD)
        const delivered = got.length
        const status = await c.sendRaw(line)
        if (transport === 'websocket') expect(await c.ended).toBe(1009)
        else expect(status).toBe(413)
        await until(() => reasons.length === before + 1, 3000, 'the disconnect')
        expect(reasons.at(-1)).toBe('payload too large')
        expect(got.length).toBe(delivered)
      } finally {
        c.close()
      }
      const next = await rawConnect(transport, started.base)
      try {
        await next.send({ type: PacketType.EVENT, seq: 1, name: 'e', args: ['ok'], ackId: 3 })
        expect(await next.next((p) => p.type === PacketType.REPLY)).toMatchObject({ ackId: 3, args: [2] })
      } finally {
        next.close()
      }
    },
  )
})
