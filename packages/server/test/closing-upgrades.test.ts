// app.close() while an application's own close hook, added before the plugin, still runs: Fastify
// refuses every request then (its `return503OnClosing`), before any route or hook, WebSocket
// upgrades included (but for the endpoints', which Parley answers itself from the close's first
// moment: an upgrade here is of another path). Whatever those clients do with their connections,
// the close ends.
import type { AddressInfo } from 'node:net'
import parley from '@parley/server'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { until } from './helpers.js'
import { RawHttp } from './raw-http.js'

/** Only a guard against a close that never ends; no test measures how fast it is. */
const CLOSE_GUARD_MS = 10_000

const UPGRADE =
  'GET /elsewhere/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
  'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
  'Sec-WebSocket-Protocol: parley.v1\r\n\r\n'

const leftOpen: RawHttp[] = []
afterEach(() => {
  for (const connection of leftOpen.splice(0)) connection.destroy()
})

/** A listening app whose own close hook, added before the plugin, waits for `release()`. */
async function heldAtClose(hook: 'preClose' | 'onClose') {
  // Fastify's defaults: the plugin, not forceCloseConnections, has to let the connections go.
  const app: FastifyInstance = Fastify()
  let entered = false
  let release = () => {}
  app.addHook(hook, async () => {
    entered = true
    await new Promise<void>((resolve) => {
      release = resolve
    })
  })
  await app.register(parley)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as AddressInfo).port
  return { app, port, entered: () => entered, release: () => release() }
}

/** Resolves when `closing` does, rejects when it takes past the guard. */
function settledWithinGuard(closing: Promise<unknown>): Promise<'closed' | 'still open'> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const guard = new Promise<'still open'>((resolve) => {
    timer = setTimeout(() => resolve('still open'), CLOSE_GUARD_MS)
  })
  return Promise.race([closing.then(() => 'closed' as const), guard]).finally(() => clearTimeout(timer))
}

describe('app.close() while an earlier preClose hook of the application runs', () => {
  it.each([
    ['keeps its connection', false],
    ['drops its connection', true],
  ])(
    'ends when a WebSocket upgrade came meanwhile and its client %s',
    async (_name, drop) => {
      const held = await heldAtClose('preClose')
      const closing = held.app.close()
      await until(held.entered, 2000, 'the close hook')
      const upgrade = await RawHttp.open(held.port)
      leftOpen.push(upgrade)
      upgrade.write(UPGRADE)
      expect((await upgrade.answer()).status).toBe(503)
      if (drop) upgrade.socket.end()
      held.release()
      expect(await settledWithinGuard(closing)).toBe('closed')
      // The server's end of the connection went with it.
      await upgrade.closed
    },
    CLOSE_GUARD_MS + 5000,
  )

  it(
    'ends with keep-alive connections opened meanwhile, used or not',
    async () => {
      const held = await heldAtClose('preClose')
      const closing = held.app.close()
      await until(held.entered, 2000, 'the close hook')
      const unused = await RawHttp.open(held.port)
      const used = await RawHttp.open(held.port)
      leftOpen.push(unused, used)
      used.write('GET /parley/client.js HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n')
      expect((await used.answer()).status).toBe(503)
      held.release()
      expect(await settledWithinGuard(closing)).toBe('closed')
      await Promise.all([unused.closed, used.closed])
    },
    CLOSE_GUARD_MS + 5000,
  )
})
