// Two Fastify instances on one HTTP server, each with Parley under a prefix with a parameter: the
// router reads `/:tenant/parley` and `/:org/parley` as one path, whatever the parameters are named,
// so the second is refused as at the same path written alike; and once the first has begun to
// close, it is that one's successor there.

import { connect } from '@parley/client'
import { ParleyOptionError } from '@parley/server'
import { describe, expect, it, onTestFinished } from 'vitest'
import { within } from './helpers.js'
import {
  closingWithHeldClient,
  connectEachTransport,
  restartedWhileClosing,
  sharedServer,
} from './restarted-under-parameter.js'

describe('instances on one server with Parley under prefixes with a parameter', () => {
  it('refuse a second whose parameter has another name, as at the same path', async () => {
    const shared = await sharedServer(onTestFinished)
    await shared.make('/:tenant')
    const err = await shared.make('/:org').then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(ParleyOptionError)
    expect(err).toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: 'path' })
    expect((err as Error).message).toMatch(/another Fastify instance on the same HTTP server mounts Parley/)
  })

  it('give a WebSocket at a static prefix to its instance, not to one whose parameter matches it', async () => {
    // As the router reads them: a static segment before a parameter, the more specific route.
    const shared = await sharedServer(onTestFinished)
    const byParameter = await shared.make('/:tenant')
    const byName = await shared.make('/acme')
    const client = connect(`http://127.0.0.1:${shared.port}/acme/parley`, {
      transports: ['websocket'],
      reconnection: false,
    })
    onTestFinished(() => void client.disconnect())
    await within(
      new Promise<void>((resolve) => client.once('connect', () => resolve())),
      5000,
      'the client to connect',
    )
    expect([byName.parley.sockets.size, byParameter.parley.sockets.size]).toEqual([1, 0])
  })

  it('leave the clients at a static prefix to its open instance while one with a parameter closes', async () => {
    const { shared } = await closingWithHeldClient(onTestFinished)
    const byName = await shared.make('/acme')
    byName.serve()
    await connectEachTransport(`http://127.0.0.1:${shared.port}/acme/parley`, onTestFinished)
    expect(byName.parley.sockets.size).toBe(2)
  })

  it('let one named otherwise succeed one that closes: the new clients its, the old session its own', async () => {
    const { shared, hold, reason, closing, restarted } = await restartedWhileClosing('/:org', onTestFinished)

    // A new client goes to the successor, over HTTP and over WebSocket: the old one, counting
    // itself the last at its path, would refuse its handshake 503 PARLEY_SERVER_SHUTTING_DOWN.
    await connectEachTransport(`http://127.0.0.1:${shared.port}/t2/parley`, onTestFinished)
    expect(restarted.parley.sockets.size).toBe(2)
    hold.release()
    await within(closing, 5000, 'the old instance to close')
    expect(await within(reason, 5000, 'the old client to end')).toBe('server shutdown')
  })
})
