// Where a session lives, for a request that reached a node other than its own: the owner
// record read from Redis and the live set of the last heartbeat, and the node a draining node
// sends its resumes to. Pure reads: nothing here changes a record.
import type { LocalSockets, NodeAddress, SessionOwnerAnswer } from '@parley/server'
import type { Nodes } from './nodes.js'
import { within } from './send.js'
import type { SessionOwners } from './sessions.js'

/** What a lookup needs of the adapter. */
export interface LookupParts {
  /** This node's id. */
  readonly node: string
  readonly sockets: LocalSockets
  readonly sessions: SessionOwners
  readonly nodes: Pick<Nodes, 'has' | 'address' | 'unheardOf' | 'beat' | 'lastAddress'>
  readonly requestTimeout: number
  /** The route parameters a handed-off session opened under (see `HandOffStore.params`). */
  readonly handedOffParams: (sid: string) => Promise<Record<string, string> | undefined>
}

/** Where `sid` lives: see `RedisAdapter.sessionOwner`. */
export async function sessionOwner(parts: LookupParts, sid: string): Promise<SessionOwnerAnswer> {
  if (parts.sockets.hasSession(sid)) return 'local'
  const record = await parts.sessions.owner(sid)
  if (record === null) return 'unknown'
  const owner = record.node
  if (owner === parts.node && !record.handingOff) return 'local'
  // A node that joined since the last heartbeat (or published its address since): read the
  // live set again before calling the owner gone, one more round trip, only for this case. Not
  // for a node this node saw lapse, heard leave or found without an address: the read would
  // change no answer, and every lookup of its sessions would pay for it. One of those that comes
  // back says so at once (see `Nodes.#joined`), and is live here from then on.
  const stale = parts.nodes.has(owner)
    ? parts.nodes.address(owner) === undefined
    : parts.nodes.unheardOf(owner)
  if (stale) await within(parts.nodes.beat(), parts.requestTimeout, undefined)
  // Out of the live set without a goodbye, its record lapsed (a stalled process, a slow Redis):
  // that does not prove it dead, and its sessions are sent there all the same, whether or not
  // this node saw it live (its address record outlives the heartbeat). Alive, it answers and
  // the client keeps its session; dead, it cannot be reached, and the request is answered as
  // for an unknown session, as it would have been.
  const url = parts.nodes.address(owner) ?? (await parts.nodes.lastAddress(owner))
  // A handed-off session can be claimed whether or not its old node is still there.
  if (!record.handingOff && !parts.nodes.has(owner) && url === undefined) return 'unknown'
  // With the route parameters the session opened under, kept beside its record (or, from a node
  // of an earlier version, in the hash of its handoff: one more round trip, only for a session
  // handed off): a request under others (another tenant) is answered as one of no session,
  // wherever it reached, and is never sent on to the owner, reachable or not.
  const params = record.params ?? (record.handingOff ? await parts.handedOffParams(sid) : undefined)
  return {
    node: owner,
    ...(url !== undefined && { url }),
    ...(record.handingOff && { handingOff: true }),
    ...(params !== undefined && { params }),
  }
}

/** Another live node for `sid`'s resume, none of `except`: see `RedisAdapter.anotherNode`. */
export function anotherNode(
  nodes: Pick<Nodes, 'others' | 'address'>,
  sid: string,
  except?: ReadonlySet<string>,
): NodeAddress | undefined {
  const reachable = nodes
    .others()
    .filter((id) => nodes.address(id) !== undefined && !except?.has(id))
    .sort()
  if (reachable.length === 0) return undefined
  let hash = 0
  for (let i = 0; i < sid.length; i++) hash = (hash * 31 + sid.charCodeAt(i)) >>> 0
  const node = reachable[hash % reachable.length]!
  return { node, url: nodes.address(node)! }
}
