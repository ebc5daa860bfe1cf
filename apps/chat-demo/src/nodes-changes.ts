import type { NodesChangeListener } from '@parley/redis'
import type { Adapter } from '@parley/server'

/**
 * An adapter that tells the application when the cluster's live nodes change, as
 * `RedisAdapter.onNodesChange` of `@parley/redis` does: called once per change, it returns what
 * removes the listener.
 */
export interface TellsNodesChanges {
  onNodesChange(listener: NodesChangeListener): () => void
}

/**
 * Whether `adapter` can tell of changes to the live nodes. Asked of what it can do, not of its
 * class: an app with a second copy of `@parley/redis` installed (another version beside the
 * demo's, or one bundled apart) has an adapter of another `RedisAdapter` class, and
 * `instanceof` would be false there, leaving presence unhealed without a word.
 */
export function tellsNodesChanges(adapter: Adapter): adapter is Adapter & TellsNodesChanges {
  return typeof (adapter as Adapter & Partial<TellsNodesChanges>).onNodesChange === 'function'
}
