// A restart whose boot failed, never closed, then the next one at the same path, as a process
// that logs the failure and tries again: the old instance closing (or closed), a first restart
// whose boot failed after Parley registered (a plugin of the application's threw, or an onReady
// hook after Parley's), then a second. The second was refused (PARLEY_INVALID_OPTION, another
// instance mounting Parley at that path already): the failed one, never closed, still held the
// path. Now it holds nothing: the second takes the path's new clients, and the old one's sessions
// handed off, as if the failed one had never come; the failed one takes no upgrade meanwhile,
// and answers nothing at its close when the application gets round to it.

import { connect, type Socket } from '@parley/client'
import parley, { type ParleyServerOptions } from '@parley/server'
import Fastify, { type FastifyInstance } from 'fastify'
import { describe, expect, it, onTestFinished } from 'vitest'
import { Cluster } from './cluster-adapter.js'
import { BOOT_FAILS, FAILED_BOOTS } from './failed-boots.js'
import { gate } from './gate.js'
import { holding } from './held-events.js'
import { until, within } from './helpers.js'
import { head, RawHttp } from './raw-http.js'
import { beginHeldClose, restartableServer, TRANSPORTS } from './restartable-server.js'

type Restartable = Awaited<ReturnType<typeof restartableServer>>

/**
 * A restart on `shared` with Parley at `/a` whose boot failed as `fail` has it, never closed
 * before the test ends; `setup` runs before its boot (a hook of the application's).
 */
async function failedRestart(
  shared: Restartable,
  fail: (app: FastifyInstance) => Promise<void>,
  options: Omit<ParleyServerOptions, 'path'> = {},
  setup?: (app: FastifyInstance) => void,
) {
  const failed = Fastify({ forceCloseConnections: true, serverFactory: () => shared.server })
  onTestFinished(async () => {
    await failed.close().catch(() => {})
  })
  failed.register(parley, { ...options, path: '/a' })
  setup?.(failed)
  await fail(failed)
  await expect(failed.ready()).rejects.toThrow(BOOT_FAILS)
  return failed
}

/** The old instance on `shared`, closing (held by its polling client's event). */
async function closingOld(shared: Restartable) {
  const olds = holding()
  const old = await shared.make('old', olds.onConnection)
  shared.serve(old)
  const { client } = await shared.connect('polling')
  await beginHeldClose(old, olds, client, 'the old instance')
}

/** The error a new WebSocket client at `/a` on `shared` fails with, or `connected`. */
async function newWebSocketClient(shared: Restartable) {
  const client = connect(`http://127.0.0.1:${shared.port}/a`, {
    transports: ['websocket'],
    reconnection: false,
  })
  shared.clients.push(client)
  return within(
    new Promise<unknown>((resolve) => {
      client.once('connect', () => resolve('connected'))
      client.once('connect_error', resolve)
    }),
    5000,
    'the new WebSocket client to connect or fail',
  )
}

describe.each(FAILED_BOOTS)('a restart after one whose boot failed, never closed: %s', (_, fail) => {
  it("takes the path's new clients over every transport", async () => {
    const shared = await restartableServer(true)
    await closingOld(shared)
    await failedRestart(shared, fail)
    const next = await shared.make('next')
    shared.serve(next)
    for (const transport of TRANSPORTS) expect((await shared.connect(transport)).where).toBe('next')
  })

  it("takes over the old one's sessions it handed off", async () => {
    const shared = await restartableServer(true)
    const cluster = new Cluster({ handoff: true })
    const handoff = { timeout: 2000 }
    const old = await shared.make('old', undefined, undefined, { adapter: cluster.adapter('old'), handoff })
    shared.serve(old)
    const client: Socket = connect(`http://127.0.0.1:${shared.port}/a`, {
      transports: ['websocket'],
      reconnectionDelayMax: 300,
    })
    shared.clients.push(client)
    await until(() => client.connected, 5000, 'the client to connect')
    const sid = client.id
    // The only node: its drain stores the session and seals it at once, for the next instance.
    await within(old.close(), 10_000, 'the old instance to close')
    const failed = await failedRestart(shared, fail, { adapter: cluster.adapter('failed'), handoff })
    const next = await shared.make('next', undefined, undefined, {
      adapter: cluster.adapter('next'),
      handoff,
    })
    shared.serve(next)
    await until(() => next.parley.sockets.size === 1 && client.connected, 10_000, 'the session taken over')
    expect({ id: client.id, recovered: client.recovered }).toEqual({ id: sid, recovered: true })
    expect(await within(client.emitWithAck('where' as never), 5000, 'the answer to where')).toBe('next')
    expect(failed.parley.sockets.size).toBe(0)
  }, 35_000)

  it('takes no WebSocket upgrade once the old one has closed', async () => {
    const shared = await restartableServer(true)
    const old = await shared.make('old')
    await within(old.close(), 5000, 'the old instance to close')
    const failed = await failedRestart(shared, fail)
    // Refused as with no instance on the server (which of Node's answers, the server's handler
    // says): the client tries again, later, at the next one.
    expect(await newWebSocketClient(shared)).not.toBe('connected')
    expect(failed.parley.sockets.size).toBe(0)
  })

  it("leaves the next one the path's requests and upgrades at its close", async () => {
    const shared = await restartableServer(true)
    await closingOld(shared)
    // Its close held once Parley's own close hook has run.
    const held = gate()
    onTestFinished(() => held.open())
    const failed = await failedRestart(shared, fail, {}, (app) =>
      app.register(async (context) => context.addHook('preClose', () => held.pass())),
    )
    const next = await shared.make('next')
    shared.serve(next)
    const closing = failed.close()
    onTestFinished(async () => {
      held.open()
      await closing
    })
    await until(() => held.reached(), 5000, 'the failed instance to reach its held close hook')
    for (const transport of TRANSPORTS) expect((await shared.connect(transport)).where).toBe('next')
  })
})

// Where Parley's onReady hook never ran (a plugin that threw at its registration), nothing tells
// Parley the boot failed: the failed instance counted among those serving on the server, and the
// old one left the idle connection to it, open until Node's keep-alive timeout. An instance counts
// there only once its boot reached Parley.
describe.each(FAILED_BOOTS)('a restart whose boot failed, never closed: %s', (_, fail) => {
  it('leaves the old one, closing, to end its idle kept-alive connections as the last on the server', async () => {
    const shared = await restartableServer(true)
    const olds = holding()
    const old = await shared.make('old', olds.onConnection, (app) => app.get('/quick', async () => 'quick'))
    shared.serve(old)
    // An idle kept-alive connection of the old instance's.
    const connection = await RawHttp.open(shared.port)
    onTestFinished(() => connection.destroy())
    connection.write(head('GET', '/quick'))
    expect((await connection.answer()).status).toBe(200)
    const { client } = await shared.connect('polling')
    const { closing } = await beginHeldClose(old, olds, client, 'the old instance')
    await failedRestart(shared, fail)
    olds.release()
    await within(closing, 5000, 'the old instance to close')
    await within(connection.closed, 3000, "the idle connection to end with the old instance's close")
  })
})

describe('a second instance at the path, registered while the first booted, whose boot fails as the first becomes ready', () => {
  it('gives back what it took on the server: the first ends its idle kept-alive connections at its close', async () => {
    const shared = await restartableServer(true)
    const instance = () => {
      const app = Fastify({ forceCloseConnections: true, serverFactory: () => shared.server })
      onTestFinished(async () => {
        await app.close().catch(() => {})
      })
      return app
    }
    const first = instance()
    const second = instance()
    // Both registered before either is ready: neither refuses the other yet.
    await first.register(parley, { path: '/a' })
    await second.register(parley, { path: '/a' })
    await first.ready()
    await expect(second.ready()).rejects.toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: 'path' })
    // An idle kept-alive connection on the server.
    const connection = await RawHttp.open(shared.port)
    onTestFinished(() => connection.destroy())
    connection.write(head('GET', '/quick'))
    expect((await connection.answer()).status).toBe(404)
    await within(first.close(), 5000, 'the first instance to close')
    await within(connection.closed, 3000, "the idle connection to end with the first instance's close")
  })
})
