// A restart on a shared server whose boot reaches Parley's onReady hook while the old instance,
// the last one serving there, is closing past its own Parley's close hook, then fails at a later
// onReady hook. Parley's hook took a fresh tracking of the server's connections (the old one's had
// begun to close), and the failure gave the old one back. The connections that came in between
// were in the fresh tracking alone, which nobody closes then: one that carried no request stayed
// open until its client gave up on it. They are now ended as the closing instance ends the
// server's.

import parley from '@parley/server'
import Fastify from 'fastify'
import { describe, expect, it, onTestFinished } from 'vitest'
import { BOOT_FAILS } from './failed-boots.js'
import { gate } from './gate.js'
import { until, within } from './helpers.js'
import { RawHttp } from './raw-http.js'
import { restartableServer } from './restartable-server.js'

describe('a restart whose boot fails after Parley took fresh tracking of the closing server', () => {
  it('ends the connection without a request that came while it booted', async () => {
    const shared = await restartableServer(true)
    // The old instance's close held after Parley's own close hook, which ended the server's
    // connections (the last instance serving there).
    const oldHeld = gate()
    onTestFinished(() => oldHeld.open())
    const old = await shared.make('old', undefined, (app) => app.addHook('preClose', () => oldHeld.pass()))
    shared.serve(old)
    const closing = old.close()
    onTestFinished(async () => {
      oldHeld.open()
      await closing
    })
    await until(() => oldHeld.reached(), 5000, "the old instance's close to pass Parley's")

    // The restart: its boot waits at an onReady hook after Parley's, then fails there.
    const failed = Fastify({ forceCloseConnections: true, serverFactory: () => shared.server })
    onTestFinished(async () => {
      await failed.close().catch(() => {})
    })
    const bootHeld = gate()
    onTestFinished(() => bootHeld.open())
    await failed.register(parley, { path: '/a' })
    failed.addHook('onReady', async () => {
      await bootHeld.pass()
      throw new Error(BOOT_FAILS)
    })
    const booting = failed.ready()
    const failing = expect(booting).rejects.toThrow(BOOT_FAILS)
    await until(() => bootHeld.reached(), 5000, "the restart's boot to pass Parley's onReady hook")

    // A connection that comes meanwhile, and sends nothing.
    let accepted = 0
    const count = () => {
      accepted++
    }
    shared.server.on('connection', count)
    onTestFinished(() => {
      shared.server.off('connection', count)
    })
    const connection = await RawHttp.open(shared.port)
    onTestFinished(() => connection.destroy())
    await until(() => accepted === 1, 5000, 'the server to accept the connection')
    expect(connection.isClosed).toBe(false)

    bootHeld.open()
    await within(failing, 5000, "the restart's boot to fail")
    oldHeld.open()
    await within(closing, 5000, 'the old instance to close')
    await within(connection.closed, 3000, "the connection to end with the old instance's close")
  }, 35_000)
})
