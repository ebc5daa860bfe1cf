// A multi-node adapter for forwarding tests: rooms stay on each node (MemoryAdapter), and a
// shared in-memory directory, sid -> { node, url }, stands in for what a Redis adapter publishes.
// Each node records the sessions it opens or resumes, and forgets those that end; a node asked
// about a session of another one answers with that node's URL, so the server forwards requests
// there over the network itself.
import {
  type Adapter,
  type AdapterFactory,
  type LocalSockets,
  MemoryAdapter,
  type SessionOwnerAnswer,
} from '@parley/server'

export interface DirectoryEntry {
  node: string
  url: string
}

export class Directory {
  readonly owners = new Map<string, DirectoryEntry>()
  /** Every `sessionOwner` question, by the node asked. */
  readonly asked: string[] = []

  /** The `adapter` option of the server that is node `name`. */
  adapter(name: string): AdapterFactory {
    return (sockets) => directoryAdapter(this, name, sockets)
  }
}

/** One node's adapter: its own rooms in memory, the shared directory for session owners. */
function directoryAdapter(directory: Directory, node: string, sockets: LocalSockets): Adapter {
  const rooms = new MemoryAdapter(sockets)
  return Object.assign(rooms, {
    sessionOwner(sid: string): SessionOwnerAnswer {
      directory.asked.push(node)
      if (sockets.hasSession(sid)) return 'local'
      const owner = directory.owners.get(sid)
      return owner && owner.node !== node ? { ...owner } : 'unknown'
    },
    sessionOpened(sid: string): void {
      const url = sockets.url()
      if (url) directory.owners.set(sid, { node, url })
    },
    sessionClosed(sid: string): void {
      if (directory.owners.get(sid)?.node === node) directory.owners.delete(sid)
    },
  })
}
