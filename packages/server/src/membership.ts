import type { Adapter, BroadcastOptions, Room } from './adapter/adapter.js'

/**
 * A join or leave of one socket that its adapter has not finished yet, or that waits its turn
 * behind one: what it does to the socket's rooms. Kept only while it is under way, and only
 * with an adapter that answers later (the built-in adapters answer at once: none is ever kept).
 * `only`: a `socketsJoin` / `socketsLeave`, which changes the socket's rooms only if it is one
 * of the sockets those options reach once the steps before it are done.
 */
export interface MembershipStep {
  readonly join: boolean
  readonly rooms: readonly Room[] | Room
  readonly only?: BroadcastOptions | undefined
}

/** A socket of this node whose joins or leaves are under way: what `changeRooms` orders. */
export interface UnsettledSocket {
  readonly id: string
  /** A `socketsJoin` / `socketsLeave` for this socket, after its own steps (see `changeRooms`). */
  inTurn(join: boolean, rooms: Room[], only: BroadcastOptions): void | Promise<void>
}

/** The sockets of this node with a join or leave under way: empty with the built-in adapters. */
export type UnsettledSockets = Set<UnsettledSocket>

/** True when a socket in `rooms` (its own room included) is one that `options` reaches. */
export function reaches(options: BroadcastOptions, rooms: ReadonlySet<Room> | undefined): boolean {
  if (rooms === undefined) return false
  for (const room of options.except) if (rooms.has(room)) return false
  if (options.rooms.size === 0) return true
  for (const room of options.rooms) if (rooms.has(room)) return true
  return false
}

/**
 * What `steps`, in order, make of `rooms` (the rooms the adapter holds for the socket now):
 * the rooms as the socket's joins and leaves were called. A step the adapter has already
 * applied changes nothing when applied again, so it does not matter how far it got.
 */
export function roomsAfter(rooms: ReadonlySet<Room>, steps: readonly MembershipStep[]): Set<Room> {
  const after = new Set(rooms)
  for (const { join, rooms: named, only } of steps) {
    if (only && !reaches(only, after)) continue
    for (const room of typeof named === 'string' ? [named] : named) {
      if (join) after.add(room)
      else after.delete(room)
    }
  }
  return after
}

/**
 * `socketsJoin` (`join`) or `socketsLeave` of `rooms` for every socket `options` reaches. A
 * socket of this node with a join or leave of its own under way gets it in turn, after those,
 * if `options` reaches it then; the adapter's call leaves it out by its own room (`except`).
 * With none under way (always so with the built-in adapters) it is the adapter's call alone,
 * as it was. Sockets of other nodes are the adapter's: their own joins and leaves are not
 * waited for. Rejects with the first failure, the adapter's or a socket's.
 */
export function changeRooms(
  adapter: Adapter,
  unsettled: UnsettledSockets | undefined,
  options: BroadcastOptions,
  rooms: Room[],
  join: boolean,
): void | Promise<void> {
  if (unsettled === undefined || unsettled.size === 0) return changeAtAdapter(adapter, options, rooms, join)
  const sockets = [...unsettled]
  const except = new Set(options.except)
  for (const socket of sockets) except.add(socket.id)
  const done = [changeAtAdapter(adapter, { ...options, except }, rooms, join)]
  for (const socket of sockets) done.push(socket.inTurn(join, rooms, options))
  return Promise.all(done).then(() => undefined)
}

function changeAtAdapter(
  adapter: Adapter,
  options: BroadcastOptions,
  rooms: Room[],
  join: boolean,
): void | Promise<void> {
  return join ? adapter.addSockets(options, rooms) : adapter.delSockets(options, rooms)
}
