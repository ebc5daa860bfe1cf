// One HTTP server kept across restarts of the Fastify instance on it (serverFactory), as a process
// restarting its instance in place has it: the harness of the suites on restarts at the path of
// an instance still closing.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { connect, type Socket } from '@parley/client'
import type { TransportName } from '@parley/protocol'
import parley, { type ParleyServerOptions, type ServerSocket } from '@parley/server'
import Fastify, { type FastifyInstance } from 'fastify'
import { onTestFinished } from 'vitest'
import type { holding } from './held-events.js'
import { closeApp, until, within } from './helpers.js'

export const TRANSPORTS: TransportName[] = ['websocket', 'sse', 'polling']

type Handler = (req: IncomingMessage, res: ServerResponse) => void

/**
 * One HTTP server whose requests go to the handler of the instance the application made current,
 * as a process restarting its Fastify instance on a server it keeps does; `make` gives each new
 * instance that server.
 */
export async function restartableServer(return503OnClosing: boolean) {
  const server = createServer()
  const handlers = new Map<FastifyInstance, Handler>()
  let current: Handler | undefined
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (current) current(req, res)
    else res.writeHead(404).end()
  })
  const apps: FastifyInstance[] = []
  const clients: Socket[] = []
  onTestFinished(async () => {
    for (const client of clients.splice(0)) client.disconnect()
    for (const each of apps) await closeApp(each)
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  return {
    server: server as Server,
    port,
    clients,
    /**
     * A Fastify instance on the server, Parley at `/a` with `options` answering `where` with
     * `name` (on the sockets it takes over too); `setup` runs once Parley is registered, before
     * the instance is ready (a hook of the application's), `ahead` before Parley is registered
     * (a hook of the application's that Fastify runs before Parley's).
     */
    async make(
      name: string,
      onConnection?: (socket: ServerSocket) => void,
      setup?: (app: FastifyInstance) => void,
      options: Omit<ParleyServerOptions, 'path'> = {},
      ahead?: (app: FastifyInstance) => void,
    ) {
      let given: Handler | undefined
      const app = Fastify({
        forceCloseConnections: true,
        return503OnClosing,
        serverFactory: (handler) => {
          given = handler
          return server
        },
      })
      if (given) handlers.set(app, given)
      apps.push(app)
      ahead?.(app)
      await app.register(parley, { ...options, path: '/a' })
      const answerWhere = (socket: ServerSocket) =>
        socket.on('where', (ack: (where: string) => void) => ack(name))
      app.parley.on('connection', (socket) => {
        answerWhere(socket)
        onConnection?.(socket)
      })
      app.parley.on('restored', answerWhere)
      setup?.(app)
      await app.ready()
      return app
    },
    /** Whether `serve` has been given another instance than the first. */
    restarted: false,
    /** From now on the server's requests go to `app`. */
    serve(app: FastifyInstance) {
      if (current) this.restarted = true
      current = handlers.get(app)
    },
    /** A client of `/a` over `transport`, connected, and the name of the instance that answers it. */
    async connect(transport: TransportName): Promise<{ client: Socket; where: string }> {
      const client = connect(`http://127.0.0.1:${port}/a`, { transports: [transport], reconnection: false })
      clients.push(client)
      await within(
        new Promise<void>((resolve) => client.once('connect', () => resolve())),
        5000,
        `a ${transport} client to connect`,
      )
      const where = await within(client.emitWithAck('where' as never), 5000, 'the answer to where')
      return { client, where: where as string }
    },
  }
}

/**
 * `instance`'s close begun while `client`'s event `hold` waits in its middleware (see
 * `holding`), which the close waits for: that event let go, and the close awaited, when the test
 * ends. `who` names the instance in what the waits say.
 */
export async function beginHeldClose(
  instance: FastifyInstance,
  hold: ReturnType<typeof holding>,
  client: Socket,
  who: string,
): Promise<{ closing: Promise<void> }> {
  client.emit('hold' as never)
  await until(() => hold.held === 1, 5000, `${who}'s event to wait in the middleware`)
  const closing = instance.close()
  onTestFinished(async () => {
    hold.release()
    await closing
  })
  await until(() => instance.parley.closing, 5000, `${who} to begin its close`)
  return { closing }
}
