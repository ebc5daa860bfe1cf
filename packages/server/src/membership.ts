import type { Room } from './adapter/adapter.js'

/**
 * A join or leave of one socket that its adapter has not finished yet, or that waits its turn
 * behind one: what it does to the socket's rooms. Kept only while it is under way, and only
 * with an adapter that answers later (the built-in adapters answer at once: none is ever kept).
 */
export interface MembershipStep {
  readonly join: boolean
  readonly rooms: readonly Room[] | Room
}

/**
 * What `steps`, in order, make of `rooms` (the rooms the adapter holds for the socket now):
 * the rooms as the socket's joins and leaves were called. A step the adapter has already
 * applied changes nothing when applied again, so it does not matter how far it got.
 */
export function roomsAfter(rooms: ReadonlySet<Room>, steps: readonly MembershipStep[]): Set<Room> {
  const after = new Set(rooms)
  for (const { join, rooms: named } of steps) {
    for (const room of typeof named === 'string' ? [named] : named) {
      if (join) after.add(room)
      else after.delete(room)
    }
  }
  return after
}
