// Two Fastify instances on one HTTP server, each with Parley under a prefix with a parameter: the
// router reads `/:tenant/parley` and `/:org/parley` as one path, whatever the parameters are named,
// so the second is refused as at the same path written alike; and once the first has begun to
// close, it is that one's successor there.

import { connect } from '@parley/client'
import { PacketType } from '@parley/protocol'
import { ParleyOptionError } from '@parley/server'
import { describe, expect, it, onTestFinished } from 'vitest'
import { holding } from './held-events.js'
import { until, within } from './helpers.js'
import { Closed, rawConnect } from './raw-client.js'
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

describe('a resume under another tenant of a session the closing instance held, at its successor', () => {
  it('gets a new session there: neither the 503 of a session live there, nor the CLOSE of one that ended', async () => {
    const shared = await sharedServer(onTestFinished)
    const hold = holding()
    const old = await shared.make('/:tenant', hold)
    old.serve()
    const base = `http://127.0.0.1:${shared.port}`
    // `live` holds the old instance's close with an event in its middleware; `ended` ends first.
    const live = await rawConnect('polling', `${base}/t1/parley`)
    const ended = await rawConnect('polling', `${base}/t1/parley`)
    onTestFinished(() => {
      live.close()
      ended.close()
    })
    old.parley.sockets.get(ended.open.id)?.disconnect()
    await live.send({ type: PacketType.EVENT, seq: 1, name: 'hold', args: [], ackId: 0 })
    await until(() => hold.held === 1, 5000, 'the event to wait in the middleware')
    const closing = old.app.close()
    onTestFinished(async () => {
      hold.release()
      await closing
    })
    await until(() => old.parley.closing, 5000, 'the old instance to begin its close')
    const restarted = await shared.make('/:tenant')
    restarted.serve()

    for (const { sid } of [live, ended]) {
      const other = await rawConnect('polling', `${base}/t2/parley`, { sid, ack: 0 })
      onTestFinished(() => other.close())
      expect(other.sid).not.toBe(sid)
      expect(other.open.recovered).toBe(false)
    }
    // Under its own tenant, the ended one's client still hears its CLOSE.
    const own = await rawConnect('polling', `${base}/t1/parley`, { sid: ended.sid, ack: 0 }).then(
      () => undefined,
      (err: unknown) => err,
    )
    expect(own).toBeInstanceOf(Closed)
    expect((own as Closed).packet.reason).toBe('server disconnect')
  })
})
