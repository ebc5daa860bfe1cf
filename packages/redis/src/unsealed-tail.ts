// What a claimer adds to a tail it read without the old node's seal: the broadcasts that node
// read after its last batch that landed, before the claimer's cut, which no tail holds (see
// read-window.ts).
import type { LocalSockets, SessionSnapshot } from '@parley/server'
import type { ReadWindow } from './read-window.js'
import { fits, remoteMessage } from './remote.js'
import type { Warnings } from './warnings.js'
import { decodeEvent, type Place } from './wire.js'

/** What `unsealedTail` needs of the adapter. */
export interface UnsealedTailParts {
  readonly node: string
  readonly window: ReadWindow
  /** Their `maxPayload`, which another node's broadcast must fit, as when it is read live. */
  readonly sockets: LocalSockets
  readonly warnings: Warnings
}

/**
 * `tail` (read without the seal, with the old node's `places`) followed by each broadcast of the
 * window read before `cut` that the old node had not read as of its last write and that the
 * session's socket takes (in its rooms at the cut: the tail's rooms entry, else the snapshot's),
 * numbered after the tail's packets, in channel order: the server releases them after the tail
 * and before anything that reached the socket live, which came after the cut. `whole` is false
 * when the window no longer reached back to the old node's place for some node (see
 * `ReadWindow.since`).
 */
export function unsealedTail(
  parts: UnsealedTailParts,
  snapshot: SessionSnapshot,
  tail: readonly string[],
  places: ReadonlyMap<string, Place>,
  cut: number,
): { tail: string[]; whole: boolean } {
  let packets = 0
  let rooms: readonly string[] = snapshot.rooms
  for (const text of tail) {
    const found = roomsEntry(text)
    if (found) rooms = found
    else packets++
  }
  const recovered = parts.window.since(cut, places, new Set([snapshot.id, ...rooms]))
  const out = [...tail]
  let seq = snapshot.outSeq + packets
  for (const broadcast of recovered.broadcasts) {
    const event = decodeEvent(broadcast.e)
    // Read live, it was dropped as well (counted as malformed then): no socket took it.
    if (!event) continue
    const message = remoteMessage(event.name, event.args)
    if (
      broadcast.node !== parts.node &&
      !fits(message, broadcast.node, parts.sockets.maxPayload, parts.warnings)
    )
      continue
    seq++
    out.push(message.prepared().text(seq, 0))
  }
  return { tail: out, whole: recovered.whole }
}

/** The rooms of a tail's rooms entry (`{"rooms":[...]}`, see `HandOffTail.tail`), or undefined for a packet. */
function roomsEntry(text: string): string[] | undefined {
  if (!text.startsWith('{')) return undefined
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  const rooms = (value as { rooms?: unknown } | null)?.rooms
  return Array.isArray(rooms) && rooms.every((room) => typeof room === 'string') ? rooms : undefined
}
