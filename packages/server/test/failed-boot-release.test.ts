// A Fastify boot that fails after Parley registered, in each way it can fail (before Parley's
// onReady hook too, which Fastify tells Parley nothing of), with Parley's registration awaited or
// made while the boot loads it: Fastify closes nothing of such an instance, and an application
// need not close it. Parley's listeners come off the HTTP server and its adapter is closed, as
// the instance's close would do; a close of the instance afterwards closes nothing twice.
import parley, { type Adapter, MemoryAdapter } from '@parley/server'
import Fastify, { type FastifyInstance } from 'fastify'
import { describe, expect, it } from 'vitest'
import { BOOT_FAILS, FAILED_BOOTS } from './failed-boots.js'
import { until } from './helpers.js'

/** How many listeners of each event `server` has. */
function listeners(server: NodeJS.EventEmitter): Record<string, number> {
  return Object.fromEntries(server.eventNames().map((event) => [String(event), server.listenerCount(event)]))
}

/** The memory adapter, with a `close` (it has none of its own) that counts its calls. */
function counted(): {
  closes: number
  adapter: (sockets: ConstructorParameters<typeof MemoryAdapter>[0]) => Adapter
} {
  const count = {
    closes: 0,
    adapter: (sockets: ConstructorParameters<typeof MemoryAdapter>[0]): Adapter => {
      const adapter: Adapter = new MemoryAdapter(sockets)
      adapter.close = () => {
        count.closes++
      }
      return adapter
    },
  }
  return count
}

describe.each(FAILED_BOOTS)('%s', (_way, fail) => {
  it.each([
    ['awaited', true],
    ['not awaited', false],
  ])('takes Parley off the server and closes its adapter, Parley registered %s', async (_how, awaited) => {
    // The same failure without Parley: what Fastify leaves on its server by itself.
    const plain = Fastify()
    await fail(plain)
    await expect(plain.ready()).rejects.toThrow(BOOT_FAILS)
    const app: FastifyInstance = Fastify()
    const count = counted()
    try {
      if (awaited) await app.register(parley, { adapter: count.adapter })
      else app.register(parley, { adapter: count.adapter })
      await fail(app)
      await expect(app.ready()).rejects.toThrow(BOOT_FAILS)
      await until(() => count.closes === 1, 3000, 'the adapter to be closed')
      expect(listeners(app.server)).toEqual(listeners(plain.server))
    } finally {
      await app.close()
      await plain.close()
    }
    expect(count.closes).toBe(1)
  })
})
