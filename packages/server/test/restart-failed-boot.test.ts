// A restart at the path of an instance still closing whose boot fails after Parley registered: a
// plugin of the application's registered after it throws, or an onReady hook that runs after
// Parley's own throws (of the instance's root context, or of a context registered after Parley's,
// with Parley at the root or under a prefix of its own). The new instance never served anyone,
// and the closing one goes on answering the path's new clients itself, as after a failed
// registration of Parley (restart-while-closing.test.ts), whether the application closes the
// failed instance or not. Parley's claim stayed in place until that instance's close: the closing
// one left the path's requests to the server's handler (which still gives it them: Fastify's bare
// 503, which a page on another origin cannot read), and the path's WebSocket upgrades went to the
// failed instance. Parley's own onReady hook ran before the one that failed: taken for the end of
// the boot, it made the failed instance the successor all the same.

import { connect } from '@parley/client'
import parley from '@parley/server'
import Fastify, { type FastifyInstance } from 'fastify'
import { describe, expect, it, onTestFinished } from 'vitest'
import { BOOT_FAILS, FAILED_BOOTS } from './failed-boots.js'
import { holding } from './held-events.js'
import { within } from './helpers.js'
import { exchange } from './http-exchange.js'
import { beginHeldClose, restartableServer } from './restartable-server.js'
import { closingWithHeldClient } from './restarted-under-parameter.js'

/** The old instance closing (held), and a restart on its server whose boot failed after Parley's. */
async function failedBoot(closed: boolean, fail: (app: FastifyInstance) => Promise<void>) {
  const shared = await restartableServer(true)
  const olds = holding()
  const old = await shared.make('old', olds.onConnection)
  shared.serve(old)
  const { client } = await shared.connect('polling')
  await beginHeldClose(old, olds, client, 'the old instance')
  const failed = Fastify({ serverFactory: () => shared.server })
  onTestFinished(async () => {
    await failed.close().catch(() => {})
  })
  failed.register(parley, { path: '/a' })
  await fail(failed)
  await expect(failed.ready()).rejects.toThrow(BOOT_FAILS)
  if (closed) await failed.close()
  return shared
}

/** The answer to a new polling client's handshake at `url`: its status and code. */
async function handshakeAnswer(url: string) {
  const answer = await exchange(url, 'POST', { 'content-type': 'text/plain' }, '[8,{}]')
  return { status: answer.status, code: answer.body.code }
}

/** The code of the error a new WebSocket client at `url` fails to connect with. */
async function webSocketRefusal(url: string) {
  const client = connect(url, { transports: ['websocket'], reconnection: false })
  onTestFinished(() => void client.disconnect())
  const error = await within(
    new Promise<{ code?: unknown }>((resolve) => client.once('connect_error', resolve)),
    5000,
    "the WebSocket client's connect_error",
  )
  return error.code
}

const SHUTTING_DOWN = { status: 503, code: 'PARLEY_SERVER_SHUTTING_DOWN' }

describe.each(FAILED_BOOTS)('a restart whose boot failed after Parley registered: %s', (_, fail) => {
  describe.each([
    ['never closed', false],
    ['closed', true],
  ])('%s', (_, closed) => {
    it("leaves the old one answering the path's new clients itself", async () => {
      const shared = await failedBoot(closed, fail)
      // The server's handler still gives the path to the old one: a new client there gets its
      // coded answer, not Fastify's bare 503.
      expect(await handshakeAnswer(`http://127.0.0.1:${shared.port}/a/poll?v=1`)).toEqual(SHUTTING_DOWN)
    })

    it("leaves the old one the path's WebSocket upgrades", async () => {
      const shared = await failedBoot(closed, fail)
      expect(await webSocketRefusal(`http://127.0.0.1:${shared.port}/a`)).toBe('PARLEY_SERVER_SHUTTING_DOWN')
    })
  })
})

/**
 * On a shared server, an instance closing with Parley under `/:tenant`, and one made after it with
 * Parley under `prefix`, whose boot failed as `fail` has it (never closed).
 */
async function failedUnder(prefix: string, fail: (app: FastifyInstance) => Promise<void>) {
  const { shared } = await closingWithHeldClient(onTestFinished)
  const failed = Fastify({ serverFactory: () => shared.server })
  onTestFinished(async () => {
    await failed.close().catch(() => {})
  })
  failed.register(async (tenant) => tenant.register(parley, {}), { prefix })
  await fail(failed)
  await expect(failed.ready()).rejects.toThrow(BOOT_FAILS)
  return shared
}

describe('a restart under a prefix whose boot failed at an onReady hook of a context registered after Parley', () => {
  // Parley's onReady hook is its context's, which Fastify runs (and ends) before it runs the
  // hooks of the contexts registered after it.
  it("leaves the old one the path's new clients and WebSocket upgrades", async () => {
    const shared = await failedUnder('/:tenant', async (app) => {
      app.register(async (context) => {
        context.addHook('onReady', async () => {
          throw new Error(BOOT_FAILS)
        })
      })
    })
    expect(await handshakeAnswer(`http://127.0.0.1:${shared.port}/t2/parley/poll?v=1`)).toEqual(SHUTTING_DOWN)
    expect(await webSocketRefusal(`http://127.0.0.1:${shared.port}/t2/parley`)).toBe(
      'PARLEY_SERVER_SHUTTING_DOWN',
    )
  })
})

describe.each(FAILED_BOOTS)(
  'an instance whose boot failed at a static prefix beside a closing one under a parameter: %s',
  (_, fail) => {
    // A router holding both routes would give `/t2/parley` to the static one, and the closing one
    // leaves such URLs to an open instance there: not to one that never booted, which serves
    // nobody.
    it('leaves the closing one answering the URLs under that prefix', async () => {
      const shared = await failedUnder('/t2', fail)
      expect(await handshakeAnswer(`http://127.0.0.1:${shared.port}/t2/parley/poll?v=1`)).toEqual(
        SHUTTING_DOWN,
      )
    })
  },
)
