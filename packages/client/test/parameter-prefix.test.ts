// The Node client at `/acme/parley`, a server with Parley under the Fastify prefix `/:tenant`:
// the handshake, the climb from SSE or polling to WebSocket, and the resume after a network cut
// all go to the tenant the client's URL names, and the session goes on there.

import type { TransportName } from '@parley/protocol'
import parley, { type ParleyServer } from '@parley/server'
import Fastify from 'fastify'
import { describe, expect, it, onTestFinished } from 'vitest'
import { startFaultProxy } from '../../../test/support/fault-proxy.js'
import { closeApp, within } from '../../server/test/helpers.js'
import { client, until } from './helpers.js'

/**
 * A server with Parley under `/:tenant`, behind a fault proxy; the tenant of each request to it
 * (the upgrades included), as the router read it.
 */
async function tenantServer() {
  const app = Fastify({ forceCloseConnections: true })
  const tenants: string[] = []
  let server: ParleyServer | undefined
  await app.register(
    async (tenant) => {
      tenant.addHook('onRequest', async (request) => {
        tenants.push((request.params as { tenant: string }).tenant)
      })
      await tenant.register(parley, {})
      server = tenant.parley
      server.on('connection', (socket) => {
        socket.on('ping', (ack: (answer: string) => void) => ack('pong'))
      })
    },
    { prefix: '/:tenant' },
  )
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const proxy = await startFaultProxy(port)
  onTestFinished(async () => {
    await proxy.close()
    await closeApp(app)
  })
  return { parley: server!, proxy, tenants }
}

describe('the client under a prefix with a parameter', () => {
  it.each([['sse'], ['polling']] as [TransportName][])(
    'keeps the tenant of its URL at the handshake, the climb from %s to WebSocket and the resume',
    async (first) => {
      const { parley, proxy, tenants } = await tenantServer()
      // WebSocket refused at first: the client steps down, then climbs once it passes.
      proxy.ws = 'reject'
      const socket = client(`${proxy.url}/acme/parley`, {
        transports: ['websocket', first],
        upgradeDelay: 100,
        upgradeDelayMax: 200,
        reconnectionDelay: 50,
        reconnectionDelayMax: 100,
      })
      const switches: string[] = []
      socket.on('transport', (now, _before, why) => switches.push(`${why} ${now}`))
      await until(() => socket.connected && socket.transport === first, 5000, `connected over ${first}`)
      const sid = socket.id
      proxy.ws = 'pass'
      await until(() => socket.transport === 'websocket', 5000, 'the climb to WebSocket')
      expect(socket.id).toBe(sid)
      expect(await within(socket.emitWithAck('ping' as never), 5000, 'an answer')).toBe('pong')

      // A drop: the client resumes its session.
      proxy.cut('all')
      await until(() => switches.length === 2 && socket.connected, 5000, 'the resume')
      // Its HELLO resumes the session, on WebSocket or, stepping down after the loss, over HTTP.
      expect(switches[0]).toBe('upgrade websocket')
      expect(switches[1]).toMatch(/^(resume|downgrade) /)
      expect(socket.id).toBe(sid)
      expect(await within(socket.emitWithAck('ping' as never), 5000, 'an answer after the resume')).toBe(
        'pong',
      )
      expect(parley.sockets.size).toBe(1)
      expect(tenants.length).toBeGreaterThan(2)
      expect(new Set(tenants)).toEqual(new Set(['acme']))
    },
    30_000,
  )
})
