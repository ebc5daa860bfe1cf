// Two Fastify instances on one HTTP server, each with Parley under a prefix with a parameter: the
// router reads `/:tenant/parley` and `/:org/parley` as one path, whatever the parameters are named,
// so the second is refused as at the same path written alike; and once the first has begun to
// close, it is that one's successor there.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { connect } from '@parley/client'
import parley, { ParleyOptionError, type ParleyServer } from '@parley/server'
import Fastify, { type FastifyInstance } from 'fastify'
import { describe, expect, it, onTestFinished } from 'vitest'
import { holding } from './held-events.js'
import { closeApp, until, within } from './helpers.js'

type Handler = (req: IncomingMessage, res: ServerResponse) => void

/** One HTTP server on loopback whose requests go to the instance made current. */
async function sharedServer() {
  const server = createServer()
  let current: Handler | undefined
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (current) current(req, res)
    else res.writeHead(404).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  const apps: FastifyInstance[] = []
  onTestFinished(async () => {
    for (const app of apps) await closeApp(app)
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return {
    server,
    port,
    /** An instance on the server with Parley at `/parley` under `prefix`, made ready. */
    async make(prefix: string, hold?: ReturnType<typeof holding>) {
      let given: Handler | undefined
      const app = Fastify({
        forceCloseConnections: true,
        serverFactory: (handler) => {
          given = handler
          return server
        },
      })
      apps.push(app)
      let made: ParleyServer | undefined
      await app.register(
        async (tenant) => {
          await tenant.register(parley, {})
          if (hold) tenant.parley.on('connection', hold.onConnection)
          made = tenant.parley
        },
        { prefix },
      )
      await app.ready()
      return {
        app,
        parley: made!,
        serve: () => {
          current = given
        },
      }
    },
  }
}

describe('instances on one server with Parley under prefixes with a parameter', () => {
  it('refuse a second whose parameter has another name, as at the same path', async () => {
    const shared = await sharedServer()
    await shared.make('/:tenant')
    const err = await shared.make('/:org').then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(ParleyOptionError)
    expect(err).toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: 'path' })
    expect((err as Error).message).toMatch(/another Fastify instance on the same HTTP server mounts Parley/)
  })

  it('let one named otherwise succeed one that closes: the new clients its, the old session its own', async () => {
    const shared = await sharedServer()
    const hold = holding()
    const old = await shared.make('/:tenant', hold)
    old.serve()
    const client = connect(`http://127.0.0.1:${shared.port}/t1/parley`, {
      transports: ['polling'],
      reconnection: false,
    })
    onTestFinished(() => void client.disconnect())
    await within(
      new Promise<void>((resolve) => client.once('connect', () => resolve())),
      5000,
      'the client to connect',
    )
    const reason = new Promise<string>((resolve) => client.once('disconnect', resolve))
    client.emit('hold' as never)
    await until(() => hold.held === 1, 5000, 'the event to wait in the middleware')
    const closing = old.app.close()
    onTestFinished(async () => {
      hold.release()
      await closing
    })
    await until(() => old.parley.closing, 5000, 'the old instance to begin its close')
    const restarted = await shared.make('/:org')
    restarted.serve()

    // A new client goes to the successor, over HTTP and over WebSocket: the old one, counting
    // itself the last at its path, would refuse its handshake 503 PARLEY_SERVER_SHUTTING_DOWN.
    for (const transport of ['polling', 'websocket'] as const) {
      const fresh = connect(`http://127.0.0.1:${shared.port}/t2/parley`, {
        transports: [transport],
        reconnection: false,
      })
      onTestFinished(() => void fresh.disconnect())
      await within(
        new Promise<void>((resolve, reject) => {
          fresh.once('connect', () => resolve())
          fresh.once('connect_error', reject)
        }),
        5000,
        `a new ${transport} client to connect`,
      )
    }
    expect(restarted.parley.sockets.size).toBe(2)
    hold.release()
    await within(closing, 5000, 'the old instance to close')
    expect(await within(reason, 5000, 'the old client to end')).toBe('server shutdown')
  })
})
