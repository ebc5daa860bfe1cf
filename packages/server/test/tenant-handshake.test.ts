// Parley under a Fastify prefix with a parameter (`/:tenant`): the handshake says which tenant a
// socket came in under, to the middleware and to `connection` alike, on every transport.

import { connect, type Socket } from '@parley/client'
import parley from '@parley/server'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { closeApp, within } from './helpers.js'

let app: FastifyInstance | undefined
let client: Socket | undefined

afterEach(async () => {
  client?.disconnect()
  client = undefined
  await closeApp(app)
  app = undefined
})

/** What the middleware and the `connection` listener read of one handshake. */
interface Seen {
  params: Record<string, string>
  url: string
}

describe.each(['websocket', 'sse', 'polling'] as const)('the handshake under /:tenant over %s', (name) => {
  it('carries the route parameters and the URL the client came by', async () => {
    const seen: { middleware?: Seen; connection?: Seen } = {}
    app = Fastify()
    await app.register(
      async (tenant) => {
        await tenant.register(parley, {})
        tenant.parley.use((socket) => {
          seen.middleware = { params: { ...socket.handshake.params }, url: socket.handshake.url }
        })
        tenant.parley.on('connection', (socket) => {
          seen.connection = { params: { ...socket.handshake.params }, url: socket.handshake.url }
        })
      },
      { prefix: '/:tenant' },
    )
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as { port: number }
    client = connect(`http://127.0.0.1:${port}/acme/parley`, {
      transports: [name],
      reconnection: false,
    })
    await within(
      new Promise<void>((resolve) => client?.once('connect', () => resolve())),
      5000,
      'the client to connect',
    )
    const path = name === 'websocket' ? '/acme/parley/ws' : `/acme/parley/${name === 'sse' ? 'sse' : 'poll'}`
    for (const what of [seen.middleware, seen.connection]) {
      expect(what?.params).toEqual({ tenant: 'acme' })
      expect(what?.url.startsWith(`${path}?`)).toBe(true)
    }
  })
})
