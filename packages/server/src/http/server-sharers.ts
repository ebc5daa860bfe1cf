/**
 * The Fastify instances that mount Parley on each HTTP server. Several can share one server
 * (`serverFactory`): one that closes must leave the server's connections to the others, which
 * still serve on them. Only the last one to close lets them go (see `IdleConnections`,
 * `Http2Sessions`), as the server then closes.
 */
const servers = new WeakMap<object, Set<object>>()

/**
 * Counts the Fastify instance whose router is `routing` (its mount points share one) among those
 * on `server`, until the returned `leave` is called (at its close; again is harmless), which
 * tells whether no other instance is left on the server.
 */
export function shareServer(server: object, routing: object): () => boolean {
  let sharers = servers.get(server)
  if (!sharers) {
    sharers = new Set()
    servers.set(server, sharers)
  }
  const held = sharers
  held.add(routing)
  return () => {
    held.delete(routing)
    if (held.size === 0 && servers.get(server) === held) servers.delete(server)
    return held.size === 0
  }
}
