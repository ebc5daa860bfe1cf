// Fastify instances sharing one HTTP server each read an upgrade's URL by their own router's
// options: a WebSocket reaches the instance whose router serves its URL (percent-encoded, in
// other letter case, with a trailing slash or doubled slashes, as that router allows), and opens
// its session there; one no instance serves is refused, as its router refuses it.

import { createServer } from 'node:http'
import { connect as connectSocket } from 'node:net'
import { decodeText, PacketType, WS_SUBPROTOCOL } from '@parley/protocol'
import parley from '@parley/server'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { describe, expect, it, onTestFinished } from 'vitest'
import WebSocket from 'ws'
import { closeApp, within } from './helpers.js'
import { rawUpgradeHead } from './raw-websocket.js'
import { upgradeStatus } from './upgrade-status.js'

type RouterOptions = NonNullable<FastifyServerOptions['routerOptions']> & { useSemicolonDelimiter?: boolean }

/**
 * Fastify instances on one `node:http` server listening on loopback, each with Parley at its
 * `path` and its `routerOptions`, in order (the first takes the upgrades nobody claims); all
 * closed, then the server, when the test ends. Plain requests get a bare 404: only upgrades are
 * sent on here.
 */
async function sharedServer(mounts: { path: string; routerOptions: RouterOptions }[]) {
  const server = createServer((_req, res) => res.writeHead(404).end())
  const apps = mounts.map(({ routerOptions }) =>
    Fastify({ forceCloseConnections: true, routerOptions, serverFactory: () => server }),
  )
  onTestFinished(async () => {
    for (const app of apps) await closeApp(app)
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  for (const [i, { path }] of mounts.entries()) {
    await apps[i]!.register(parley, { path })
    await apps[i]!.ready()
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  return { apps, port }
}

/** Opens a WebSocket at `target` (path and query), sends a HELLO and waits for its OPEN. */
async function openSession(port: number, target: string): Promise<void> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${target}`, WS_SUBPROTOCOL)
  onTestFinished(() => ws.terminate())
  const first = new Promise<string>((resolve, reject) => {
    ws.once('open', () => ws.send(JSON.stringify([PacketType.HELLO, {}])))
    ws.once('message', (data: Buffer) => resolve(data.toString()))
    ws.once('unexpected-response', (_req, res) => reject(new Error(`${target}: HTTP ${res.statusCode}`)))
    ws.once('error', reject)
  })
  const decoded = decodeText(await within(first, 5000, `the answer to the HELLO at ${target}`))
  expect(decoded.ok && decoded.packet.type).toBe(PacketType.OPEN)
}

/**
 * The status of the answer to an upgrade to `target`, sent over a bare connection: for targets the
 * ws client will not send (a fragment, the absolute form).
 */
async function rawStatus(port: number, target: string): Promise<number> {
  const socket = connectSocket(port, '127.0.0.1')
  onTestFinished(() => {
    socket.destroy()
  })
  socket.write(rawUpgradeHead(target))
  const head = new Promise<string>((resolve, reject) => {
    socket.once('data', (chunk: Buffer) => resolve(chunk.toString('latin1')))
    socket.once('error', reject)
  })
  return Number((await within(head, 5000, `the answer to the upgrade of ${target}`)).split(' ')[1])
}

describe('an upgrade on a server that Fastify instances share', () => {
  it("reaches the instance whose router reads its URL as its mount point's, by that router's options", async () => {
    const { apps, port } = await sharedServer([
      { path: '/a', routerOptions: { caseSensitive: false, ignoreTrailingSlash: true } },
      { path: '/b', routerOptions: { ignoreDuplicateSlashes: true, useSemicolonDelimiter: true } },
    ])
    const sessions = () => apps.map((app) => app.parley.sockets.size)
    await openSession(port, '/%61/ws?v=1')
    await openSession(port, '/%62/%77s?v=1')
    expect(sessions()).toEqual([1, 1])
    await openSession(port, '/A/WS/?v=1')
    expect(sessions()).toEqual([2, 1])
    await openSession(port, '//b//ws?v=1')
    await openSession(port, '/%62/ws;v=1')
    expect(sessions()).toEqual([2, 3])
    expect(await rawStatus(port, '/%62/ws#v=1')).toBe(101)
    expect(await rawStatus(port, `http://127.0.0.1:${port}/%62/ws?v=1`)).toBe(101)
    // Where the router of neither serves it, the first instance's answers it, as before.
    for (const target of ['/B/ws?v=1', '/b/ws/?v=1', '//a/ws?v=1', '/c/ws?v=1', '/%C3/ws?v=1']) {
      expect(await upgradeStatus(`ws://127.0.0.1:${port}${target}`), target).toBeGreaterThanOrEqual(400)
    }
    expect(sessions()).toEqual([2, 3])
  })

  it('reaches the instance whose router serves it over one whose mount point it lies under', async () => {
    // The WebSocket route of the first, /x/ws, is the mount point of the second.
    const { apps, port } = await sharedServer([
      { path: '/x', routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: true } },
      { path: '/x/ws', routerOptions: {} },
    ])
    const sessions = () => apps.map((app) => app.parley.sockets.size)
    await openSession(port, '/x/ws/?v=1')
    await openSession(port, '/x//ws?v=1')
    expect(sessions()).toEqual([2, 0])
    await openSession(port, '/x/ws/ws?v=1')
    expect(sessions()).toEqual([2, 1])
    // The second's router reads it as written, the first's as /x/ws/ws: neither serves it.
    expect(await upgradeStatus(`ws://127.0.0.1:${port}/x/ws//ws?v=1`)).toBe(404)
    expect(sessions()).toEqual([2, 1])
  })
})

describe('an upgrade on a shared server, to Parley under a prefix the router holds as written', () => {
  it.each([
    ['a percent sign', '/100%', '/100%25'],
    ['an escaped colon', '/a::b', '/a:b'],
  ])('with %s, reaches that instance at the URL its router serves', async (_name, prefix, served) => {
    const server = createServer((_req, res) => res.writeHead(404).end())
    const apps = [0, 1].map(() => Fastify({ forceCloseConnections: true, serverFactory: () => server }))
    onTestFinished(async () => {
      for (const app of apps) await closeApp(app)
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    })
    const [first, prefixed] = [apps[0]!, apps[1]!]
    await first.register(parley, { path: '/b' })
    await first.ready()
    let scoped: FastifyInstance | undefined
    await prefixed.register(
      async (context) => {
        await context.register(parley)
        scoped = context
      },
      { prefix },
    )
    await prefixed.ready()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    // The router decodes a request's path, not a route's: a `%` of the prefix is a `%25` of the
    // URL, and `::` one `:`.
    await openSession(port, `${served}/parley/ws?v=1`)
    expect([first.parley.sockets.size, scoped!.parley.sockets.size]).toEqual([0, 1])
  })
})
