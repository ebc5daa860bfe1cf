import type { Room } from './adapter/adapter.js'

/**
 * The one entry of a handoff's tail that is not a packet: the rooms the socket was in on the
 * old node at the cut, without its own, when they are not the snapshot's (see
 * `HandOffTail.tail`). Joins and leaves made there after the freeze (the application's own, or
 * a `socketsJoin` / `socketsLeave` that reached the socket), or a join under way at the freeze
 * that failed after it, changed them; the new node takes the difference from the snapshot.
 * A JSON object, `{"rooms":[...]}`: every packet's text is a JSON array, so no packet reads as
 * one, and the adapter carries it as any other text of the tail.
 */
export function roomsEntry(rooms: readonly Room[]): string {
  return JSON.stringify({ rooms })
}

/** A tail as the old node left it: its packets, in order, and its rooms at the cut (if given). */
export interface SplitTail {
  packets: string[]
  /** Undefined when the tail has no rooms entry: the snapshot's rooms stand. */
  rooms: Room[] | undefined
}

/**
 * Takes the rooms entry (the last, should there be several) out of `tail`. An entry that starts
 * like one but is not (a store that damaged it) is left among the packets, where it reads as a
 * packet out of order, as any damaged packet does.
 */
export function splitTail(tail: readonly string[]): SplitTail {
  let rooms: Room[] | undefined
  const packets: string[] = []
  for (const text of tail) {
    const found = text.startsWith('{') ? roomsOf(text) : undefined
    if (found) rooms = found
    else packets.push(text)
  }
  return { packets, rooms }
}

function roomsOf(text: string): Room[] | undefined {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  const rooms = (value as { rooms?: unknown } | null)?.rooms
  if (!Array.isArray(rooms) || !rooms.every((room) => typeof room === 'string')) return undefined
  return rooms as Room[]
}

/** True when `a` and `b` hold the same rooms (each list without repeats). */
export function sameRooms(a: readonly Room[], b: readonly Room[]): boolean {
  if (a.length !== b.length) return false
  const set = new Set(a)
  return b.every((room) => set.has(room))
}
