// What the server must refuse never leaves the client: `emit` throws it at once, or, when only
// the server's OPEN can tell (its maxPayload), it is dropped unsent with a coded error. Each packet
// the server refuses ends the session, and the client replays what the server has not
// acknowledged into every new one: one such packet sent would end every session after it.
import { ErrorCode, type ParleyError } from '@parley/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import { revoked, trapsThrow } from '../../../test/support/odd-values.js'
import { unheard } from '../../../test/support/unheard.js'
import { client, closeAll, next, parleyOf, startServer, until } from './helpers.js'

afterEach(closeAll)

/** `levels` objects around 1. */
const nest = (levels: number): unknown => (levels === 0 ? 1 : { a: nest(levels - 1) })

/** A server that counts its sessions and records every `e` event. */
async function recorder(options: Record<string, unknown> = {}) {
  const got: unknown[] = []
  let sessions = 0
  const server = await startServer((app) => {
    parleyOf(app).on('connection', (socket) => {
      sessions++
      socket.on('e', (value: unknown) => got.push(value))
    })
  }, options)
  return { server, got, sessions: () => sessions }
}

describe.each(['websocket', 'sse', 'polling'] as const)('over %s', (transport) => {
  it.each([
    ['a forbidden key', { toJSON: () => ({ constructor: 1 }) }, ErrorCode.FORBIDDEN_KEY],
    ['100 levels of nesting', { toJSON: () => nest(100) }, ErrorCode.UNSERIALIZABLE],
  ])('throws when a toJSON gives %s, and the session goes on', async (_, value, code) => {
    const { server, got, sessions } = await recorder()
    const socket = client(server.url, { transports: [transport] })
    await next(socket, 'connect')
    expect(() => socket.emit('e', value)).toThrow(expect.objectContaining({ code }))
    socket.emit('e', { when: new Date(0), list: [{ toJSON: () => 'fine' }] })
    await until(() => got.length > 0)
    expect(got).toEqual([{ when: '1970-01-01T00:00:00.000Z', list: ['fine'] }])
    expect(sessions()).toBe(1)
    expect(socket.connected).toBe(true)
  })
})

describe.each(['websocket', 'sse', 'polling'] as const)(
  'over %s, an argument that throws when read',
  (transport) => {
    it('is refused with PARLEY_UNSERIALIZABLE by every emit, whatever it threw, and the session goes on', async () => {
      const { server, got, sessions } = await recorder()
      const socket = client(server.url, { transports: [transport] })
      await next(socket, 'connect')
      const throwing = (thrown: () => unknown) => ({
        get x() {
          throw thrown()
        },
      })
      const seen = await unheard(async () => {
        for (const make of [
          trapsThrow,
          revoked,
          () => [1, { a: revoked() }],
          () => throwing(() => new Error('getter')),
          // What a getter throws may fight being read too.
          () => throwing(revoked),
          () => throwing(() => Object.create(null)),
          () => ({ toJSON: () => trapsThrow() }),
        ]) {
          const unserializable = expect.objectContaining({ code: ErrorCode.UNSERIALIZABLE })
          expect(() => socket.emit('e', make())).toThrow(unserializable)
          expect(() => socket.volatile.emit('e', make())).toThrow(unserializable)
          expect(() => socket.timeout(1000).emit('e', make(), () => {})).toThrow(unserializable)
          await expect(socket.emitWithAck('e', make())).rejects.toEqual(unserializable)
        }
        // An object without prototype is an object: it goes as any other.
        socket.emit('e', Object.assign(Object.create(null) as object, { a: 1 }))
        await until(() => got.length > 0)
      })
      expect(seen).toEqual([])
      expect(got).toEqual([{ a: 1 }])
      expect(sessions()).toBe(1)
      expect(socket.connected).toBe(true)
    })
  },
)

describe.each(['websocket', 'sse', 'polling'] as const)(
  'over %s, what was emitted before the first OPEN',
  (transport) => {
    it("is not sent when it is larger than the server's maxPayload: its ack rejects, an error says so", async () => {
      const { server, got, sessions } = await recorder({ maxPayload: 2000 })
      const socket = client(server.url, { transports: [transport] })
      const errors: ParleyError<string>[] = []
      socket.on('error', (error) => errors.push(error))
      // Before OPEN the client knows no smaller limit than the protocol's default.
      socket.emit('e', 'x'.repeat(5000))
      const reply = socket.emitWithAck('e', 'y'.repeat(5000))
      socket.emit('e', 'small')
      await expect(reply).rejects.toMatchObject({ code: ErrorCode.PAYLOAD_TOO_LARGE })
      await until(() => got.length > 0)
      expect(errors.map((e) => e.code)).toEqual([ErrorCode.PAYLOAD_TOO_LARGE, ErrorCode.PAYLOAD_TOO_LARGE])
      expect(errors[0]!.details).toMatchObject({ limit: 2000 })
      // The message names the event and the limit too, as a console shows it.
      expect(errors[0]!.message).toMatch(/^event "e": \d+ bytes > maxPayload 2000$/)
      // The session that took 'small' is the only one: nothing ended it.
      await new Promise((resolve) => setTimeout(resolve, 300))
      socket.emit('e', 'later')
      await until(() => got.length === 2)
      expect(got).toEqual(['small', 'later'])
      expect(sessions()).toBe(1)
    })

    it('goes out as it was when emitted, whatever the application changed since', async () => {
      const { server, got } = await recorder()
      const socket = client(server.url, { transports: [transport] })
      const seen = await unheard(async () => {
        const m: Record<string, unknown> = { a: 1 }
        socket.emit('e', m)
        m.b = 10n
        const bytes = new Uint8Array([1, 2, 3])
        socket.emit('e', { bytes })
        bytes[0] = 9
        await next(socket, 'connect')
        await until(() => got.length === 2)
      })
      expect(seen).toEqual([])
      expect(got).toEqual([{ a: 1 }, { bytes: new Uint8Array([1, 2, 3]) }])
      expect(socket.connected).toBe(true)
    })
  },
)
