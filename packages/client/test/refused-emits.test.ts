// What the server must refuse never leaves the client: `emit` throws it at once, or, when only
// the server's OPEN can tell (its maxPayload), it is dropped unsent with a coded error. Each packet
// the server refuses ends the session, and the client replays what the server has not
// acknowledged into every new one: one such packet sent would end every session after it.
import { ErrorCode } from '@parley/protocol'
import { afterEach, describe, expect, it } from 'vitest'
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
