// A node of the in-process Cluster adapter whose records of how sessions ended
// (`Adapter.sessionEnded`) a test reads, and whose store can be made to fail: the arrangement of
// the handoff tests where a client's window runs out around its handoff.
import type { AdapterFactory, EndedSession, SessionSnapshot } from '@parley/server'
import type { Cluster } from './cluster-adapter.js'

/**
 * What the store answers for `snapshot`, given `stored`, the cluster's own write: called for
 * every `handOff` of the node when given.
 */
export type StoreAnswer = (
  snapshot: SessionSnapshot,
  ttl: number,
  stored: () => Promise<boolean>,
) => Promise<boolean>

/** Node `name` of `cluster`: its adapter, and each record of how a session ended there, by sid. */
export function recordingNode(
  cluster: Cluster,
  name: string,
  store?: StoreAnswer,
): { adapter: AdapterFactory; records: Map<string, EndedSession> } {
  const records = new Map<string, EndedSession>()
  const factory = cluster.adapter(name)
  const adapter: AdapterFactory = (sockets) => {
    const made = factory(sockets)
    made.sessionEnded = (sid, ending) => {
      records.set(sid, ending)
    }
    const handOff = made.handOff?.bind(made)
    if (store)
      made.handOff = (snapshot, ttl) =>
        store(snapshot, ttl, async () => (await handOff?.(snapshot, ttl)) ?? false)
    return made
  }
  return { adapter, records }
}
