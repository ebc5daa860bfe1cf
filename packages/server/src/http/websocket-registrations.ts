import { Server } from 'node:http'

/**
 * The HTTP servers on which a mount point of Parley registered @fastify/websocket itself (the
 * application registered none in a context above it).
 *
 * Each registration listens for every upgrade of its server and sends it through Fastify's
 * router, which reaches every mount point's WebSocket route, and that route's own registration
 * takes the WebSocket (its `ws` server, with that mount point's settings). A second registration
 * listening too would find each upgrade taken by the first, and @fastify/websocket logs
 * `websocket upgrade failed` at warn for every WebSocket. So only the first listens.
 */
const listening = new WeakSet<object>()

/**
 * Where the registration of @fastify/websocket that a mount point on `server` makes listens for
 * upgrades: undefined (the server itself) for the first; for the others, a server that never
 * listens, so never emits one (the first's listener routes theirs).
 */
export function upgradeSource(server: object): Server | undefined {
  if (!listening.has(server)) {
    listening.add(server)
    return undefined
  }
  return new Server()
}
