/**
 * The mount points of Parley on each HTTP server. Several Fastify instances can share one server
 * (`serverFactory`), and one instance can mount Parley more than once (sibling contexts, whose
 * close hooks run one after the other): one that closes must leave the server's connections to
 * the others, which still serve on them, or drain there. Only the last one to close lets them go
 * (see `IdleConnections`, `Http2Sessions`), as the server then closes.
 */
const servers = new WeakMap<object, Set<{ serves: () => boolean }>>()

/**
 * Counts a mount point among those on `server`, until the returned `leave` is called (at its
 * close; again is harmless), which tells whether no other mount point that `serves` is left on
 * the server. One whose instance has yet to boot (see plugin.ts) serves on no connection: its
 * boot may have failed for good, with nothing to tell Parley, and an application need not close
 * such an instance.
 */
export function shareServer(server: object, serves: () => boolean): () => boolean {
  const mount = { serves }
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
    for (const other of held) if (other.serves()) return false
    return true
  }
}
