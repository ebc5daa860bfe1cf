// Parley under a Fastify prefix with a parameter, on one HTTP server kept across instances
// (serverFactory): the scene of an instance restarted there while the old one closes, which
// parameter-prefix-close.test.ts and shared-server-parameter-prefix.test.ts both play.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { connect, type Socket } from '@parley/client'
import parley, { type ParleyServer } from '@parley/server'
import Fastify, { type FastifyInstance } from 'fastify'
import { holding } from './held-events.js'
import { closeApp, until, within } from './helpers.js'

type Handler = (req: IncomingMessage, res: ServerResponse) => void

/** Takes a step for the test's end to run (its `afterEach` list, or `onTestFinished`). */
export type Later = (step: () => Promise<void> | void) => void

/** One HTTP server on loopback whose requests go to the instance made current. */
export async function sharedServer(later: Later) {
  const server = createServer()
  let current: Handler | undefined
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (current) current(req, res)
    else res.writeHead(404).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  const apps: FastifyInstance[] = []
  later(async () => {
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

/**
 * Waits for `client` to connect, then has its event `hold` wait in the middleware; `reason` is
 * the client's disconnect reason.
 */
export async function holdingItsEvent(client: Socket, hold: ReturnType<typeof holding>) {
  await within(
    new Promise<void>((resolve) => client.once('connect', () => resolve())),
    5000,
    'the client to connect',
  )
  const reason = new Promise<string>((resolve) => client.once('disconnect', resolve))
  client.emit('hold' as never)
  await until(() => hold.held === 1, 5000, 'the event to wait in the middleware')
  return { reason }
}

/**
 * On a shared server, an instance with Parley under `/:tenant` and a polling client of the
 * tenant `t1`, whose event holds the instance's close, which has begun. `reason` is the client's
 * disconnect reason.
 */
export async function closingWithHeldClient(later: Later) {
  const shared = await sharedServer(later)
  const hold = holding()
  const old = await shared.make('/:tenant', hold)
  old.serve()
  const client = connect(`http://127.0.0.1:${shared.port}/t1/parley`, {
    transports: ['polling'],
    reconnection: false,
  })
  later(() => void client.disconnect())
  const { reason } = await holdingItsEvent(client, hold)
  const closing = old.app.close()
  later(async () => {
    hold.release()
    await closing
  })
  await until(() => old.parley.closing, 5000, 'the old instance to begin its close')
  return { shared, hold, client, reason, closing }
}

/**
 * `closingWithHeldClient`, and the old instance's successor, made under `successorPrefix` and
 * served meanwhile.
 */
export async function restartedWhileClosing(successorPrefix: string, later: Later) {
  const closingScene = await closingWithHeldClient(later)
  const restarted = await closingScene.shared.make(successorPrefix)
  restarted.serve()
  return { ...closingScene, restarted }
}

/** A new client at `url` over each transport, each connected in turn. */
export async function connectEachTransport(url: string, later: Later) {
  for (const transport of ['polling', 'websocket'] as const) {
    const fresh = connect(url, { transports: [transport], reconnection: false })
    later(() => void fresh.disconnect())
    await within(
      new Promise<void>((resolve, reject) => {
        fresh.once('connect', () => resolve())
        fresh.once('connect_error', reject)
      }),
      5000,
      `a new ${transport} client to connect`,
    )
  }
}
