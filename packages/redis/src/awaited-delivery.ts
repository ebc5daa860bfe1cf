// An own broadcast of this node proved never run, given to the positioned sockets that take it
// now (see `Broadcasts.#deliverAwaited`). It runs inside the read of what proved it (a later own
// message, or the probe), in the awaited queue's pass, with more after it in the same turn: the
// other sockets, those past their marker, the broadcasts given up behind it, the end of the wait
// (`Cut.awaitedDone`) and a seal held for it. So each socket is given it on its own: one that
// throws at it loses it alone (logged), never any of those.
import type { BroadcastMessage, BroadcastOptions, LocalSockets, MemoryAdapter } from '@parley/server'
import type { Warnings } from './warnings.js'

/** `MemoryAdapter.broadcast` of `message` to the sockets `takes` picks, each delivery on its own. */
export function deliverAwaitedEach(
  memory: MemoryAdapter,
  sockets: LocalSockets,
  warnings: Warnings,
  message: BroadcastMessage,
  options: BroadcastOptions,
  takes: (id: string) => boolean,
): void {
  // The sockets the broadcast reaches (its rooms, `except`, then `takes`), as the memory adapter
  // finds them; collected there and delivered to here, where a throw ends no loop.
  const ids: string[] = []
  memory.broadcast(message, options, (id) => {
    if (takes(id)) ids.push(id)
    return false
  })
  if (ids.length === 0) return
  const event = message.prepared()
  for (const id of ids) {
    try {
      sockets.get(id)?.deliver(event, options.volatile)
    } catch (err) {
      warnings.warn(
        'awaited-delivery',
        "a broadcast of this node's that never ran failed at its delivery to a session being handed over, and is lost to its session",
        { err, event: message.name, socket: id },
      )
    }
  }
}
