// The server's making can fail after the adapter's check: its adapter, accepted and never used,
// is closed then too, or what it opened (a connection to its store) could keep the process alive
// after the registration failed; the metrics made for it leave the registry. Nothing in that part
// of the making throws on options already checked, so a fault stands in for one that would.
import parley, { type EventsMap, type LocalSockets, MemoryAdapter } from '@parley/server'
import Fastify from 'fastify'
import { Registry } from 'prom-client'
import { describe, expect, it, vi } from 'vitest'

const fault = vi.hoisted(() => ({ error: undefined as Error | undefined }))
vi.mock('../src/departures.js', async (original) => {
  const actual = await original<typeof import('../src/departures.js')>()
  class Departures extends actual.Departures<EventsMap, EventsMap, unknown> {
    constructor(...args: ConstructorParameters<typeof actual.Departures<EventsMap, EventsMap, unknown>>) {
      if (fault.error) throw fault.error
      super(...args)
    }
  }
  return { ...actual, Departures }
})

class Counted extends MemoryAdapter {
  closes = 0
  close(): void {
    this.closes++
  }
}

describe('a registration that fails after the adapter is checked', () => {
  it('closes the adapter and leaves the registry as it was', async () => {
    const registry = new Registry()
    let made: Counted | undefined
    const adapter = (sockets: LocalSockets) => {
      made = new Counted(sockets)
      return made
    }
    fault.error = new Error('the making failed')
    const app = Fastify()
    try {
      await expect(app.register(parley, { adapter, metrics: { registry } })).rejects.toBe(fault.error)
    } finally {
      fault.error = undefined
      await app.close()
    }
    expect(made?.closes).toBe(1)
    expect(registry.getMetricsAsArray()).toEqual([])
  })
})
