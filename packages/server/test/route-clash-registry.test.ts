// A registration that fails on a route the application already has under Parley's path fails
// after its metrics were made: they leave the registry, for the registration that corrects the
// path, and the adapter accepted for it is closed with the application.
import parley, { type LocalSockets, MemoryAdapter } from '@parley/server'
import Fastify from 'fastify'
import { Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'

class Counted extends MemoryAdapter {
  closes = 0
  close(): void {
    this.closes++
  }
}

describe('a registration that fails on a route clash', () => {
  it.for(['/parley/ws', '/parley/poll'])(
    'at %s leaves the registry to a corrected registration, and closes the adapter',
    async (taken) => {
      const registry = new Registry()
      let made: Counted | undefined
      const adapter = (sockets: LocalSockets) => {
        made = new Counted(sockets)
        return made
      }
      const clashing = Fastify()
      clashing.get(taken, async () => 'mine')
      let error: unknown
      try {
        await clashing.register(parley, { path: '/parley', adapter, metrics: { registry } })
        await clashing.ready()
      } catch (err) {
        error = err
      } finally {
        await clashing.close()
      }
      expect(error).toBeDefined()
      expect(made?.closes).toBe(1)
      expect(registry.getMetricsAsArray()).toEqual([])

      const corrected = Fastify()
      try {
        await corrected.register(parley, { path: '/chat', metrics: { registry } })
        await corrected.ready()
        expect(registry.getSingleMetric('parley_sessions')).toBeDefined()
      } finally {
        await corrected.close()
      }
    },
  )
})
