// A restart in place that boots the new instance before it closes the old one (`successor: true`),
// as the README's restart example does: the new one waits beside the old one, which serves the
// path meanwhile, and takes the path once the old one's close reaches Parley. Its boot failing
// (whichever way) leaves the old one serving, unclosed, and the next try boots beside it. Before,
// a second instance at the path was refused while the first was open, so the example began the
// old one's close first: a boot that failed on every try left nobody serving the path once that
// close was over.

import parley from '@parley/server'
import Fastify from 'fastify'
import { describe, expect, it, onTestFinished } from 'vitest'
import { BOOT_FAILS, FAILED_BOOTS } from './failed-boots.js'
import { gate } from './gate.js'
import { holding } from './held-events.js'
import { until, within } from './helpers.js'
import { beginHeldClose, restartableServer, TRANSPORTS } from './restartable-server.js'

type Shared = Awaited<ReturnType<typeof restartableServer>>

/** The instance named `name` on `shared`, registered as a successor, ready. */
function successor(shared: Shared, name: string) {
  return shared.make(name, undefined, undefined, { successor: true })
}

describe('a restart registered with successor: true', () => {
  it('boots beside the open instance at its path, which keeps the path meanwhile', async () => {
    const shared = await restartableServer(true)
    const old = await shared.make('old')
    shared.serve(old)
    const next = await successor(shared, 'next')
    // The server's requests still go to the old one, and so do the path's WebSocket upgrades.
    for (const transport of TRANSPORTS) expect((await shared.connect(transport)).where).toBe('old')
    expect(next.parley.sockets.size).toBe(0)
  })

  it("takes the path's new clients once the old one's close reaches Parley", async () => {
    const shared = await restartableServer(true)
    const olds = holding()
    const old = await shared.make('old', olds.onConnection)
    shared.serve(old)
    const next = await successor(shared, 'next')
    const { client } = await shared.connect('polling')
    await beginHeldClose(old, olds, client, 'the old instance')
    shared.serve(next)
    for (const transport of TRANSPORTS) expect((await shared.connect(transport)).where).toBe('next')
  })

  it("closed while the old one still serves, leaves it the path's new clients", async () => {
    const shared = await restartableServer(true)
    const old = await shared.make('old')
    shared.serve(old)
    // Its close held once Parley's own close hook has run, Parley's answers at close standing.
    const held = gate()
    onTestFinished(() => held.open())
    const next = await shared.make('next', undefined, (app) => app.addHook('preClose', () => held.pass()), {
      successor: true,
    })
    const closing = next.close()
    onTestFinished(async () => {
      held.open()
      await closing
    })
    await until(() => held.reached(), 5000, 'the successor to reach its held close hook')
    for (const transport of TRANSPORTS) expect((await shared.connect(transport)).where).toBe('old')
  })

  it('is refused beside an instance serving the path and one waiting to succeed it', async () => {
    const shared = await restartableServer(true)
    shared.serve(await shared.make('old'))
    await successor(shared, 'next')
    await expect(successor(shared, 'third')).rejects.toMatchObject({
      code: 'PARLEY_INVALID_OPTION',
      option: 'path',
    })
  })
})

describe('a registration without successor: true beside an open instance at its path', () => {
  it('is refused, the message naming the option', async () => {
    const shared = await restartableServer(true)
    shared.serve(await shared.make('old'))
    const error = await shared.make('next').catch((err: unknown) => err)
    expect(error).toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: 'path' })
    expect((error as Error).message).toContain('successor: true')
  })
})

describe.each(FAILED_BOOTS)('a restart registered with successor: true whose boot fails: %s', (_, fail) => {
  it('leaves the old one serving the path, and the next try boots beside it and takes the path', async () => {
    const shared = await restartableServer(true)
    const olds = holding()
    const old = await shared.make('old', olds.onConnection)
    shared.serve(old)
    const { client: oldClient } = await shared.connect('websocket')

    const failed = Fastify({ forceCloseConnections: true, serverFactory: () => shared.server })
    onTestFinished(async () => {
      await failed.close().catch(() => {})
    })
    failed.register(parley, { path: '/a', successor: true })
    await fail(failed)
    await expect(failed.ready()).rejects.toThrow(BOOT_FAILS)

    // Nothing of the old one's service changed: its client, and new ones over every transport.
    expect(await within(oldClient.emitWithAck('where' as never), 5000, "the old client's answer")).toBe('old')
    for (const transport of TRANSPORTS) expect((await shared.connect(transport)).where).toBe('old')

    // The application's next try.
    const next = await successor(shared, 'next')
    const { client } = await shared.connect('polling')
    await beginHeldClose(old, olds, client, 'the old instance')
    shared.serve(next)
    for (const transport of TRANSPORTS) expect((await shared.connect(transport)).where).toBe('next')
  })
})
