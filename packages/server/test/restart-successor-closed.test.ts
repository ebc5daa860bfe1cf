// An instance closing at a path whose successor (an instance restarted there meanwhile) has
// closed already, with none open there since: the requests the server's handler still gives the
// closed successor get Parley's coded answers from the closing instance, not the closed
// Fastify's bare 503, which a client on another origin cannot even read.

import { connect } from '@parley/client'
import { describe, expect, it, onTestFinished } from 'vitest'
import { holding } from './held-events.js'
import { within } from './helpers.js'
import { exchange } from './http-exchange.js'
import { beginHeldClose, restartableServer } from './restartable-server.js'

/** The old instance closing (held), its successor made, served, and closed whole since. */
async function successorClosed() {
  const shared = await restartableServer(true)
  const hold = holding()
  const old = await shared.make('old', hold.onConnection)
  shared.serve(old)
  const { client } = await shared.connect('polling')
  await beginHeldClose(old, hold, client, 'the old instance')
  const restarted = await shared.make('new')
  shared.serve(restarted)
  await within(restarted.close(), 5000, 'the successor to close')
  return shared
}

describe('an instance closing at a path whose successor has closed already', () => {
  it.each([
    ['a GET of a session no instance holds', 'GET', '/a/poll?v=1&sid=nosuch', ''],
    ['a POST of a session no instance holds', 'POST', '/a/poll?v=1&sid=nosuch', '[1,"client disconnect",""]'],
    ['a handshake', 'POST', '/a/poll?v=1', '[8,{}]'],
  ])('answers %s with its coded 503, not a bare one', async (_, method, target, body) => {
    const shared = await successorClosed()
    const answer = await exchange(
      `http://127.0.0.1:${shared.port}${target}`,
      method,
      { 'content-type': 'text/plain' },
      body,
    )
    expect({ status: answer.status, code: answer.body.code }).toEqual({
      status: 503,
      code: 'PARLEY_SERVER_SHUTTING_DOWN',
    })
  })

  // What the client does with it: tries again later. The Node client reads Fastify's bare 503 so
  // too (a page on another origin cannot read it, and takes it for a failed transport).
  it('has a new client read that the server is shutting down', async () => {
    const shared = await successorClosed()
    for (const transport of ['websocket', 'sse', 'polling'] as const) {
      const client = connect(`http://127.0.0.1:${shared.port}/a`, {
        transports: [transport],
        reconnection: false,
      })
      onTestFinished(() => void client.disconnect())
      const error = await within(
        new Promise<{ code?: unknown }>((resolve) => client.once('connect_error', resolve)),
        5000,
        `the ${transport} client's connect_error`,
      )
      expect({ transport, code: error.code }).toEqual({ transport, code: 'PARLEY_SERVER_SHUTTING_DOWN' })
    }
  })
})
