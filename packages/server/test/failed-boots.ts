// The ways the boot of a Fastify instance can fail after Parley registered in it, which the suites
// on restarts whose boot failed play each: Parley never hears of some of them.

import type { FastifyInstance } from 'fastify'

/** The message of the error each of them fails the boot with. */
export const BOOT_FAILS = 'the boot fails'

/** Each way, named, as a step given the instance once Parley's registration is asked for. */
export const FAILED_BOOTS: [string, (app: FastifyInstance) => Promise<void>][] = [
  [
    // Parley's onReady hook never runs.
    'a plugin registered after Parley throws',
    async (app) => {
      app.register(async () => {
        throw new Error(BOOT_FAILS)
      })
    },
  ],
  [
    "an onReady hook of the instance's, added after Parley registered, throws",
    async (app) => {
      // Once Parley's plugin has run: its onReady hook comes first in the root context's list.
      await app.after()
      app.addHook('onReady', async () => {
        throw new Error(BOOT_FAILS)
      })
    },
  ],
  [
    // Fastify runs the hooks of the contexts registered after Parley's once Parley's has run.
    'an onReady hook of a plugin registered after Parley throws',
    async (app) => {
      app.register(async (context) => {
        context.addHook('onReady', async () => {
          throw new Error(BOOT_FAILS)
        })
      })
    },
  ],
]
