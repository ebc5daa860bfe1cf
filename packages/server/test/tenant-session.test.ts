// Parley under a Fastify prefix with a parameter (`/:tenant`): sessions are found by their sid,
// but a session stays under the tenant it opened at. A request of it under another tenant is
// refused with a code, and a resume there does not resume it: the client gets a new session.

import { ErrorCode, PacketType } from '@parley/protocol'
import parley, { type ServerSocket } from '@parley/server'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { closeApp, until, within } from './helpers.js'
import { exchange } from './http-exchange.js'
import { expectRefusedUnderOtherParameters } from './other-route-parameters.js'
import { Closed, type RawClient, rawConnect } from './raw-client.js'

let app: FastifyInstance | undefined
const clients: RawClient[] = []

afterEach(async () => {
  for (const client of clients.splice(0)) client.close()
  await closeApp(app)
  app = undefined
})

/** Parley under `/:tenant`; the sockets it connected, with the tenant each handshake named. */
async function underTenant() {
  const sockets: ServerSocket[] = []
  const tenants: string[] = []
  app = Fastify()
  await app.register(
    async (tenant) => {
      await tenant.register(parley, {})
      tenant.parley.use((socket) => {
        tenants.push(socket.handshake.params.tenant ?? '')
      })
      tenant.parley.on('connection', (socket) => {
        sockets.push(socket)
      })
    },
    { prefix: '/:tenant' },
  )
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  return { base: `http://127.0.0.1:${port}`, sockets, tenants }
}

describe.each(['websocket', 'sse', 'polling'] as const)('a session opened at /acme/parley (%s)', (name) => {
  it('is not resumed at /globex/parley: the client gets a new session there', async () => {
    const { base, sockets, tenants } = await underTenant()
    const first = await rawConnect(name, `${base}/acme/parley`)
    clients.push(first)
    let moved = 0
    sockets[0]?.on('transport', () => moved++)
    const other = await rawConnect(name, `${base}/globex/parley`, { sid: first.sid, ack: 0 })
    clients.push(other)
    expect(other.sid).not.toBe(first.sid)
    expect(other.open.recovered).toBe(false)
    expect(tenants).toEqual(['acme', 'globex'])
    await until(() => sockets.length === 2, 3000, 'the new session')
    expect(sockets[1]?.handshake.params).toEqual({ tenant: 'globex' })
    // The first one goes on at its own tenant, on its own transport.
    expect(moved).toBe(0)
    expect(sockets[0]?.connected).toBe(true)
    expect(sockets[0]?.handshake.params).toEqual({ tenant: 'acme' })
    // And resumes there.
    first.close()
    const again = await rawConnect(name, `${base}/acme/parley`, { sid: first.sid, ack: 0 })
    clients.push(again)
    expect(again.sid).toBe(first.sid)
    expect(again.open.recovered).toBe(true)
  })
})

describe.each(['websocket', 'sse', 'polling'] as const)(
  'a session that ended at /acme/parley (%s)',
  (name) => {
    it('is not told to a resume at /globex/parley, which gets a new session; its own client hears its CLOSE', async () => {
      const { base, sockets } = await underTenant()
      const first = await rawConnect(name, `${base}/acme/parley`)
      clients.push(first)
      await until(() => sockets.length === 1, 3000, 'the session')
      sockets[0]?.disconnect()
      first.close()
      // Another tenant's client learns nothing of it: neither that it was, nor how it ended.
      const other = await rawConnect(name, `${base}/globex/parley`, { sid: first.sid, ack: 0 })
      clients.push(other)
      expect(other.sid).not.toBe(first.sid)
      expect(other.open.recovered).toBe(false)
      const own = await rawConnect(name, `${base}/acme/parley`, { sid: first.sid, ack: 0 }).then(
        () => undefined,
        (err: unknown) => err,
      )
      expect(own).toBeInstanceOf(Closed)
      expect((own as Closed).packet.reason).toBe('server disconnect')
    })
  },
)

describe.each([
  ['sse', 'sse'],
  ['polling', 'poll'],
] as const)('a request of a session opened at /acme/parley (%s)', (name, segment) => {
  it('is refused at /globex/parley with PARLEY_UNKNOWN_SESSION, and the session goes on', async () => {
    const { base, sockets } = await underTenant()
    const first = await rawConnect(name, `${base}/acme/parley`)
    clients.push(first)
    await until(() => sockets.length === 1, 3000, 'the session')
    const events: unknown[] = []
    sockets[0]?.on('note', (text: unknown) => events.push(text))
    await expectRefusedUnderOtherParameters(
      `${base}/globex/parley/${segment}?v=1&sid=${encodeURIComponent(first.sid)}`,
      [
        ['GET', ''],
        ['POST', JSON.stringify([PacketType.EVENT, 1, 'note', ['from globex'], 0])],
      ],
    )
    expect(sockets[0]?.connected).toBe(true)
    await first.send({ type: PacketType.EVENT, seq: 1, name: 'note', args: ['from acme'], ackId: 0 })
    await until(() => events.length > 0, 3000, 'the event of its own tenant')
    expect(events).toEqual(['from acme'])
  })
})

describe.each([
  ['sse', 'sse'],
  ['polling', 'poll'],
] as const)('the last words of a session opened at /acme/parley (%s)', (name, segment) => {
  it('are refused to a GET at /globex/parley, and kept for its own client', async () => {
    const { base, sockets } = await underTenant()
    // The client's first GET waits: the session ends between two of its GETs, its CLOSE kept.
    let firstGet = () => {}
    const gate = new Promise<void>((resolve) => {
      firstGet = resolve
    })
    const first = await rawConnect(name, `${base}/acme/parley`, {}, { firstGetAfter: gate })
    clients.push(first)
    await until(() => sockets.length === 1, 3000, 'the session')
    sockets[0]?.disconnect()
    const answer = await within(
      exchange(`${base}/globex/parley/${segment}?v=1&sid=${encodeURIComponent(first.sid)}`, 'GET', {}),
      5000,
      'the answer to the GET at globex',
    )
    expect([answer.status, answer.body.code, answer.body.message]).toEqual([
      400,
      ErrorCode.UNKNOWN_SESSION,
      'no such session',
    ])
    firstGet()
    const close = await first.next((p) => p.type === PacketType.CLOSE, 5000)
    expect(close).toMatchObject({ type: PacketType.CLOSE, reason: 'server disconnect' })
  })
})
