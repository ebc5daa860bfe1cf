// An adapter of the application's that fails where @parley/redis never does: for the chat's
// handling of a cluster query that rejects (a people list, a join's answer).
import type { NodesChangeListener } from '@parley/redis'
import { type BroadcastOptions, MemoryAdapter, type SocketDescription } from '@parley/server'

/** In memory, its cluster queries rejecting once `broken`; it tells of node changes too. */
export class BreakingAdapter extends MemoryAdapter {
  broken = false
  readonly listeners = new Set<NodesChangeListener>()

  override fetchSockets(options: BroadcastOptions): Promise<SocketDescription[]> {
    return this.broken ? Promise.reject(new Error('the cluster did not answer')) : super.fetchSockets(options)
  }

  onNodesChange(listener: NodesChangeListener): () => void {
    this.listeners.add(listener)
    return () => void this.listeners.delete(listener)
  }
}
