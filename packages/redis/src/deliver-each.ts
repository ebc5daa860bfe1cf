// A broadcast delivered to this node's sockets where more of the adapter's work follows it in
// the same turn: an own broadcast given up, in the PUBLISH's failure (then the cut's and the
// awaited queue's bookkeeping), one read back on the channel (then the cut's, and the flush of
// the awaited queue), another node's read on it (then those past their marker, and the places
// of the sockets joined without a cut), or one proved never run, in the awaited queue's pass
// (then the sockets past their marker, the broadcasts given up behind it, `Cut.awaitedDone` and
// a seal held for it). So each socket is given it on its own: one that throws at it loses it
// alone (logged), never the other sockets' copies nor what follows.
import type { BroadcastMessage, BroadcastOptions, LocalSockets, MemoryAdapter } from '@parley/server'
import { deliverAlone } from './one-socket.js'
import type { Warnings } from './warnings.js'

/**
 * As `MemoryAdapter.broadcast`, each socket given it on its own; `awaited` for an own broadcast
 * proved never run, given to sessions being handed over (its loss is logged in those words).
 */
export function deliverEach(
  memory: MemoryAdapter,
  sockets: LocalSockets,
  warnings: Warnings,
  message: BroadcastMessage,
  options: BroadcastOptions,
  only?: (id: string) => boolean,
  awaited = false,
): void {
  // The sockets it reaches (its rooms, `except`, then `only`, once each), as the memory adapter
  // finds them; collected there and delivered to here, where a throw ends no loop.
  const ids: string[] = []
  memory.broadcast(message, options, (id) => {
    if (!only || only(id)) ids.push(id)
    return false
  })
  if (ids.length === 0) return
  const event = message.prepared()
  for (const id of ids)
    lostAlone(warnings, message, id, awaited, () => sockets.get(id)?.deliver(event, options.volatile))
}

/**
 * As `deliverEach` with a test that passes socket `id` alone, found by its own rooms rather
 * than by walking the room (see one-socket.ts): given so to many sockets in a row, a room's
 * sockets would cost it squared.
 */
export function deliverOne(
  memory: MemoryAdapter,
  sockets: LocalSockets,
  warnings: Warnings,
  message: BroadcastMessage,
  options: BroadcastOptions,
  id: string,
): void {
  lostAlone(warnings, message, id, false, () => deliverAlone(memory, sockets, message, options, id))
}

/** Runs `deliver`, `message` to socket `id`, logging a throw: that socket loses it alone. */
function lostAlone(
  warnings: Warnings,
  message: BroadcastMessage,
  id: string,
  awaited: boolean,
  deliver: () => void,
): void {
  try {
    deliver()
  } catch (err) {
    warnings.warn(
      awaited ? 'awaited-delivery' : 'each-delivery',
      awaited
        ? "a broadcast of this node's that never ran failed at its delivery to a session being handed over, and is lost to its session"
        : 'a broadcast failed at its delivery to a socket, and is lost to its session',
      { err, event: message.name, socket: id },
    )
  }
}
