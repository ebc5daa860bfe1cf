// The HTTP/2 side of restart-failed-boot-connections.test.ts: a restart on one HTTP/2 server whose
// boot reaches Parley's onReady hook while the old instance, the last serving there, is closing
// past its own Parley's close hook, then fails at a later onReady hook. An h2 session that came in
// between was known to the fresh tracking alone, which nobody closed: it stayed open until its
// client gave up on it (Fastify's http2SessionTimeout). It is now closed as the closing instance
// closes the server's.

import http2, { type Http2SecureServer, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2'
import parley from '@parley/server'
import Fastify, { type FastifyInstance } from 'fastify'
import { describe, expect, it, onTestFinished } from 'vitest'
import { BOOT_FAILS } from './failed-boots.js'
import { gate } from './gate.js'
import { until, within } from './helpers.js'
import { selfSigned } from './self-signed.js'

type Handler = (req: Http2ServerRequest, res: Http2ServerResponse) => void

/** An instance on `server` with Parley at `/a`; `after` adds the application's hooks behind it. */
async function instance(server: Http2SecureServer, after: (app: FastifyInstance) => void) {
  let handler: Handler | undefined
  const app = Fastify({
    http2: true,
    https: { allowHTTP1: true },
    forceCloseConnections: true,
    serverFactory: (given) => {
      handler = given as unknown as Handler
      return server
    },
  }) as unknown as FastifyInstance
  onTestFinished(async () => {
    await app.close().catch(() => {})
  })
  await app.register(parley, { path: '/a' })
  after(app)
  return { app, handler: () => handler }
}

describe('a restart on an HTTP/2 server whose boot fails after Parley took fresh tracking of it, closing', () => {
  it('closes the h2 session that came while it booted', async () => {
    const tls = selfSigned()
    const server = http2.createSecureServer({ ...tls, allowHTTP1: true })
    let serving: Handler | undefined
    server.on('request', (req, res) => {
      if (serving) serving(req, res)
      else res.writeHead(404).end()
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    onTestFinished(async () => {
      await new Promise((resolve) => server.close(resolve))
    })
    const { port } = server.address() as { port: number }

    // The old instance's close held after Parley's own close hook, which closed the server's
    // sessions (the last instance serving there).
    const oldHeld = gate()
    onTestFinished(() => oldHeld.open())
    const old = await instance(server, (app) => app.addHook('preClose', () => oldHeld.pass()))
    await old.app.ready()
    serving = old.handler()
    const closing = old.app.close()
    onTestFinished(async () => {
      oldHeld.open()
      await closing
    })
    await until(() => oldHeld.reached(), 5000, "the old instance's close to pass Parley's")

    // The restart: its boot waits at an onReady hook after Parley's, then fails there.
    const bootHeld = gate()
    onTestFinished(() => bootHeld.open())
    const failed = await instance(server, (app) =>
      app.addHook('onReady', async () => {
        await bootHeld.pass()
        throw new Error(BOOT_FAILS)
      }),
    )
    const failing = expect(failed.app.ready()).rejects.toThrow(BOOT_FAILS)
    await until(() => bootHeld.reached(), 5000, "the restart's boot to pass Parley's onReady hook")

    // An h2 session that comes meanwhile, with no stream.
    let sessions = 0
    const count = () => {
      sessions++
    }
    server.on('session', count)
    onTestFinished(() => {
      server.off('session', count)
    })
    const client = http2.connect(`https://127.0.0.1:${port}`, { ca: tls.cert })
    client.on('error', () => {})
    onTestFinished(() => {
      client.destroy()
    })
    const clientClosed = new Promise<void>((resolve) => client.once('close', () => resolve()))
    await until(() => sessions === 1, 5000, 'the server to take the h2 session')
    expect(client.closed).toBe(false)

    bootHeld.open()
    await within(failing, 5000, "the restart's boot to fail")
    oldHeld.open()
    await within(closing, 5000, 'the old instance to close')
    await within(clientClosed, 3000, "the h2 session to close with the old instance's close")
  }, 35_000)
})
