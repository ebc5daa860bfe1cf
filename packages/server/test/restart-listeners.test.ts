// A process restarting its Fastify instance on one HTTP server, again and again, as the README's
// restart example does (the new instance booted with successor: true beside the old one, then the
// old one closed), a boot that fails among them: no listener piles up on the server. Parley's own
// come off at each close (and at a failed boot). Fastify puts a `clientError` listener of its own
// on the server for each instance (bound to it) and never takes it off: one more per restart,
// each keeping its closed instance, unless the application takes it off at the instance's close,
// as the example does.

import { createServer, type Server } from 'node:http'
import parley from '@parley/server'
import Fastify, { type FastifyInstance } from 'fastify'
import { describe, expect, it, onTestFinished } from 'vitest'
import { within } from './helpers.js'

const RESTARTS = 6

/** How many listeners of each event the server holds. */
function listenerCounts(server: Server): Record<string, number> {
  return Object.fromEntries(server.eventNames().map((event) => [String(event), server.listenerCount(event)]))
}

/**
 * An instance on `server` with Parley at `/a` (successor: true), ready; with `takeOffClientError`,
 * Fastify's `clientError` listener comes off the server at its close, as in the README's example.
 * `fail`: its boot fails (a plugin registered after Parley throws), and it is closed.
 */
async function boot(server: Server, takeOffClientError: boolean, fail = false): Promise<FastifyInstance> {
  const app = Fastify({ serverFactory: () => server })
  if (takeOffClientError) {
    const clientError = server.listeners('clientError').at(-1)
    app.addHook('onClose', async () => {
      if (clientError) server.off('clientError', clientError as (...args: unknown[]) => void)
    })
  }
  await app.register(parley, { path: '/a', successor: true })
  if (fail) {
    app.register(async () => {
      throw new Error('the boot fails')
    })
  }
  try {
    await app.ready()
  } catch (err) {
    await app.close()
    throw err
  }
  return app
}

/** `RESTARTS` restarts on one server, the third one's boot failing: the listener counts after each. */
async function restarts(takeOffClientError: boolean) {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  let current = await boot(server, takeOffClientError)
  onTestFinished(async () => {
    await current.close()
    await new Promise((resolve) => server.close(resolve))
  })
  const first = listenerCounts(server)
  const counts: Record<string, number>[] = []
  for (let restart = 1; restart <= RESTARTS; restart++) {
    if (restart === 3) {
      await expect(boot(server, takeOffClientError, true)).rejects.toThrow('the boot fails')
    } else {
      const next = await boot(server, takeOffClientError)
      const old = current
      current = next
      await within(old.close(), 5000, 'the old instance to close')
    }
    counts.push(listenerCounts(server))
  }
  return { first, counts }
}

describe('an instance restarted on one HTTP server again and again, as the README example does', () => {
  it('leaves no listener of its own, nor Fastify clientError listeners, piling up on the server', async () => {
    const { first, counts } = await restarts(true)
    for (const count of counts) expect(count).toEqual(first)
  })

  it("leaves Fastify's clientError listeners piling up without the example's hook, and nothing else", async () => {
    const { first, counts } = await restarts(false)
    const last = counts.at(-1) ?? {}
    // One per instance made: the first, and each restart (the failed boot's too).
    expect(last).toEqual({ ...first, clientError: 1 + RESTARTS })
  })
})
