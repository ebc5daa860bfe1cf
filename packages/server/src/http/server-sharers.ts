/**
 * The mount points of Parley on each HTTP server. Several Fastify instances can share one server
 * (`serverFactory`), and one instance can mount Parley more than once (sibling contexts, whose
 * close hooks run one after the other): one that closes must leave the server's connections to
 * the others, which still serve on them, or drain there. Only the last one to close lets them go
 * (see `IdleConnections`, `Http2Sessions`), as the server then closes.
 */
const servers = new WeakMap<object, Set<object>>()

/**
 * Counts a mount point among those on `server`, until the returned `leave` is called (at its
 * close; again is harmless), which tells whether no other mount point is left on the server.
 */
export function shareServer(server: object): () => boolean {
  const mount = {}
  let sharers = servers.get(server)
  if (!sharers) {
    sharers = new Set()
    servers.set(server, sharers)
  }
  const held = sharers
  held.add(mount)
  return () => {
    held.delete(mount)
    if (held.size === 0 && servers.get(server) === held) servers.delete(server)
    return held.size === 0
  }
}
