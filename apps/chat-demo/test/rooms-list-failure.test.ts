// The rooms list sent to every page once a room opened, read back from a store that rejects with
// something other than an Error (a store of the application's may reject with anything): the
// failure is the chat's to log at warn. Read carelessly, the handler would throw in turn, and the
// rejection, unhandled, would end the process.
import type { AddressInfo } from 'node:net'
import { connect, type Socket } from '@parley/client'
import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { unheard } from '../../../test/support/unheard.js'
import { buildChatApp } from '../src/app.js'
import type { ClientEvents, JoinReply, ServerEvents } from '../src/shared.js'
import { type ChatStore, MemoryStore } from '../src/store.js'
import { connected } from './connected.js'

type Client = Socket<ServerEvents, ClientEvents>

/**
 * A `MemoryStore` whose `rooms()` rejects with `reason` when the chat asks for the list alone;
 * a join still reads it with its history, as the store's own step.
 */
function roomsRejecting(reason: unknown): ChatStore {
  const inner = new MemoryStore()
  return new Proxy(inner, {
    get(target, key, receiver) {
      if (key === 'rooms') return () => Promise.reject(reason)
      const value = Reflect.get(target, key, receiver)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}

describe('a rooms list the store cannot read back', () => {
  const apps: FastifyInstance[] = []
  const clients: Client[] = []

  afterEach(async () => {
    for (const client of clients.splice(0)) client.disconnect()
    for (const app of apps.splice(0)) await app.close()
  })

  it('is logged at warn when the store rejects with null, and nothing is left unhandled', async () => {
    const app = await buildChatApp({ store: roomsRejecting(null) })
    apps.push(app)
    const warned: string[] = []
    app.log.warn = ((first: unknown, message?: string) =>
      void warned.push(String(message ?? first))) as typeof app.log.warn
    await app.listen({ port: 0, host: '127.0.0.1' })
    const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
    const ona: Client = connect(url, { auth: { nickname: 'ona' }, transports: ['websocket'] })
    clients.push(ona)
    await connected(ona)

    const left = await unheard(async () => {
      // A new room: opened, and the rooms list sent to everyone.
      const joined = await new Promise<JoinReply>((resolve) =>
        ona.emit('join', { room: 'new-room' }, resolve),
      )
      expect(joined).toMatchObject({ ok: true, room: 'new-room' })
      await expect
        .poll(() => warned, { timeout: 5000 })
        .toEqual(['chat: the rooms list changed, and could not be sent: null'])
    }, 300)
    expect(left).toEqual([])
  })
})
