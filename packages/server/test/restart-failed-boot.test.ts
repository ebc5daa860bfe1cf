// A restart at the path of an instance still closing whose boot fails after Parley registered (a
// plugin of the application's registered after it throws): the new instance never served anyone,
// and the closing one goes on answering the path's new clients itself, as after a failed
// registration of Parley (restart-while-closing.test.ts), whether the application closes the
// failed instance or not. Parley's claim stayed in place until that instance's close: the closing
// one left the path's requests to the server's handler (which still gives it them: Fastify's bare
// 503, which a page on another origin cannot read), and the path's WebSocket upgrades went to the
// failed instance.

import { connect } from '@parley/client'
import parley from '@parley/server'
import Fastify from 'fastify'
import { describe, expect, it, onTestFinished } from 'vitest'
import { holding } from './held-events.js'
import { within } from './helpers.js'
import { exchange } from './http-exchange.js'
import { beginHeldClose, restartableServer } from './restartable-server.js'

/** The old instance closing (held), and a restart on its server whose boot failed after Parley's. */
async function failedBoot(closed: boolean) {
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
  failed.register(async () => {
    throw new Error('a plugin of the application fails')
  })
  await expect(failed.ready()).rejects.toThrow('a plugin of the application fails')
  if (closed) await failed.close()
  return shared
}

describe.each([
  ['never closed', false],
  ['closed', true],
])('a restart whose boot failed after Parley registered (%s)', (_, closed) => {
  it("leaves the old one answering the path's new clients itself", async () => {
    const shared = await failedBoot(closed)
    // The server's handler still gives the path to the old one: a new client there gets its
    // coded answer, not Fastify's bare 503.
    const answer = await exchange(
      `http://127.0.0.1:${shared.port}/a/poll?v=1`,
      'POST',
      { 'content-type': 'text/plain' },
      '[8,{}]',
    )
    expect({ status: answer.status, code: answer.body.code }).toEqual({
      status: 503,
      code: 'PARLEY_SERVER_SHUTTING_DOWN',
    })
  })

  it("leaves the old one the path's WebSocket upgrades", async () => {
    const shared = await failedBoot(closed)
    const client = connect(`http://127.0.0.1:${shared.port}/a`, {
      transports: ['websocket'],
      reconnection: false,
    })
    onTestFinished(() => void client.disconnect())
    const error = await within(
      new Promise<{ code?: unknown }>((resolve) => client.once('connect_error', resolve)),
      5000,
      "the WebSocket client's connect_error",
    )
    expect(error.code).toBe('PARLEY_SERVER_SHUTTING_DOWN')
  })
})
