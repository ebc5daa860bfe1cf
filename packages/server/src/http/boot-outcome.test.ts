import Fastify, { type FastifyInstance } from 'fastify'
import { describe, expect, it } from 'vitest'
import { bootOutcome } from './boot-outcome.js'

// bootOutcome finds the boot under way by walking an encapsulated context's prototypes to the
// root, as Fastify makes its contexts: these hold that reading to the Fastify installed, and keep
// a Fastify that made them otherwise from failing the application's boot through Parley's hook.
describe('bootOutcome', () => {
  it.each([
    ['succeeds', false],
    ['fails', true],
  ])('settles as the whole boot does when a later context’s onReady hook %s', async (_name, fails) => {
    const app = Fastify()
    let outcome: PromiseLike<unknown> | undefined
    app.register(async (instance) => {
      instance.addHook('onReady', async () => {
        outcome = bootOutcome(instance)
      })
    })
    app.register(async (instance) => {
      instance.addHook('onReady', async () => {
        if (fails) throw new Error('a later hook failed')
      })
    })
    try {
      if (fails) await expect(app.ready()).rejects.toThrow('a later hook failed')
      else await app.ready()
      expect(outcome).toBeDefined()
      if (fails) await expect(outcome).rejects.toThrow('a later hook failed')
      else await expect(outcome).resolves.toBeDefined()
    } finally {
      await app.close().catch(() => {})
    }
  })

  it.each([
    ['whose root has no ready()', () => Object.create(Object.create({})) as FastifyInstance],
    [
      'whose root’s ready() throws',
      () =>
        Object.create({
          ready() {
            throw new TypeError('not this instance')
          },
        }) as FastifyInstance,
    ],
    [
      'whose root’s ready() returns no promise',
      () => Object.create({ ready: () => 'ready' }) as FastifyInstance,
    ],
  ])(
    'resolves, never throws, for a context %s (a Fastify that makes them otherwise)',
    async (_name, make) => {
      let outcome: PromiseLike<unknown> | undefined
      expect(() => {
        outcome = bootOutcome(make())
      }).not.toThrow()
      await expect(Promise.resolve(outcome)).resolves.toBeUndefined()
    },
  )
})
