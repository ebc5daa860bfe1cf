import type {
  Adapter,
  BroadcastMessage,
  BroadcastOptions,
  BroadcastReply,
  LocalSocket,
  LocalSockets,
  Room,
  SocketDescription,
} from './adapter.js'

/**
 * Rooms and broadcast for a single node, in memory. The default adapter.
 *
 * Memory per socket is kept small (idle memory per connection is one of Parley's benchmarks):
 * a socket in its own room and at most one other keeps no list at all (see `RoomList`), then an
 * array of the exact length until it is in many; and a socket's own room (its id, which every
 * socket joins) is not kept in the room index: its one member is known from the socket's list.
 */
export class MemoryAdapter implements Adapter {
  readonly #rooms = new Map<Room, Set<string>>()
  readonly #socketRooms = new Map<string, RoomList>()

  constructor(private readonly sockets: LocalSockets) {}

  addAll(id: string, rooms: Iterable<Room>): void {
    let mine = this.#socketRooms.get(id) ?? NO_ROOMS
    for (const room of rooms) {
      if (has(id, mine, room)) continue
      mine = withRoom(id, mine, room)
      if (room === id) continue
      let members = this.#rooms.get(room)
      if (!members) {
        members = new Set()
        this.#rooms.set(room, members)
      }
      members.add(id)
    }
    this.#socketRooms.set(id, mine)
  }

  del(id: string, room: Room): void {
    // Never a socket's own room (the Adapter contract): broadcasts from a socket leave it out by
    // that room, and `to(socket.id)` reaches it there. `delAll` alone takes it out.
    if (room === id) return
    const mine = this.#socketRooms.get(id)
    if (mine !== undefined && has(id, mine, room)) this.#socketRooms.set(id, withoutRoom(id, mine, room))
    this.#leave(id, room)
  }

  delAll(id: string): void {
    const mine = this.#socketRooms.get(id)
    if (mine === undefined) return
    for (const room of roomsOf(id, mine)) this.#leave(id, room)
    this.#socketRooms.delete(id)
  }

  socketRooms(id: string): ReadonlySet<Room> | undefined {
    const mine = this.#socketRooms.get(id)
    // A copy of a long list too, as of a short one: `socket.rooms` is a snapshot, and the Set
    // itself would change under the application's feet with the next join or leave (and a
    // write through a cast would reach the index's books).
    return mine === undefined ? mine : new Set(roomsOf(id, mine))
  }

  /**
   * `only`, when given, narrows the matching sockets further: a multi-node adapter delivers to
   * some of its sockets at another moment than to the rest (a session being handed over takes
   * its broadcasts in the order they cross nodes, not when they are emitted here).
   */
  broadcast(message: BroadcastMessage, options: BroadcastOptions, only?: (id: string) => boolean): void {
    const targets = this.#match(options, only)
    if (targets.length === 0) return
    const event = message.prepared()
    for (const socket of targets) socket.deliver(event, options.volatile)
  }

  /** `only` narrows the matching sockets further, as for `broadcast`. */
  broadcastWithAck(
    message: BroadcastMessage,
    options: BroadcastOptions,
    timeout: number,
    expect: (count: number) => void,
    reply: (reply: BroadcastReply) => void,
    only?: (id: string) => boolean,
  ): void {
    const targets = this.#match(options, only)
    expect(targets.length)
    if (targets.length === 0) return
    const event = message.prepared()
    for (const socket of targets) socket.deliverWithAck(event, timeout, reply, options.volatile)
  }

  async fetchSockets(options: BroadcastOptions): Promise<SocketDescription[]> {
    return this.#match(options).map((socket) => socket.describe())
  }

  addSockets(options: BroadcastOptions, rooms: Room[]): void {
    for (const socket of this.#match(options)) this.addAll(socket.id, rooms)
  }

  delSockets(options: BroadcastOptions, rooms: Room[]): void {
    // Never a socket's own room: `del` skips it (see there).
    for (const socket of this.#match(options)) for (const room of rooms) this.del(socket.id, room)
  }

  disconnectSockets(options: BroadcastOptions): void {
    for (const socket of this.#match(options)) socket.disconnect()
  }

  sessionOwner(): 'local' {
    return 'local'
  }

  /**
   * The local sockets an operation reaches: in any of `rooms` (all when none), in none of
   * `except`, and passing `only` when given.
   */
  #match(options: BroadcastOptions, only?: (id: string) => boolean): LocalSocket[] {
    let excluded: Set<string> | undefined
    for (const room of options.except) {
      for (const id of this.#members(room)) {
        excluded ??= new Set()
        excluded.add(id)
      }
    }
    const found: LocalSocket[] = []
    const add = (id: string) => {
      if (excluded?.has(id) || (only && !only(id))) return
      const socket = this.sockets.get(id)
      if (socket) found.push(socket)
    }
    if (options.rooms.size === 0) {
      for (const id of this.#socketRooms.keys()) add(id)
    } else if (options.rooms.size === 1) {
      // The usual broadcast, to one room: its members are already unique, no set to build.
      for (const room of options.rooms) for (const id of this.#members(room)) add(id)
    } else {
      const ids = new Set<string>()
      for (const room of options.rooms) for (const id of this.#members(room)) ids.add(id)
      for (const id of ids) add(id)
    }
    return found
  }

  /** The ids of the sockets in `room`: its index entry, and the socket whose own room it is. */
  #members(room: Room): Iterable<string> {
    const members = this.#rooms.get(room)
    const own = this.#socketRooms.get(room)
    if (own === undefined || !has(room, own, room)) return members ?? NO_ROOMS
    return members ? [room, ...members] : [room]
  }

  #leave(id: string, room: Room): void {
    const members = this.#rooms.get(room)
    if (!members) return
    members.delete(id)
    if (members.size === 0) this.#rooms.delete(room)
  }
}

/**
 * A socket's rooms. Most sockets are in their own room (the one named by their id, which every
 * socket joins) and in one room more, or none: a string stands for that, with no list of its
 * own. The socket's id stands for its own room alone; another room's name, for its own room
 * and that one. Past that, an array of the exact length, then a Set once long.
 */
type RoomList = Room | readonly Room[] | Set<Room>

const NO_ROOMS: readonly Room[] = []

/** Past this many rooms a socket's list becomes a Set (a linear scan per join gets slow). */
const LIST_ROOMS = 16

/** The rooms of socket `id` that `list` stands for. */
function roomsOf(id: string, list: RoomList): Iterable<Room> {
  if (typeof list !== 'string') return list
  return list === id ? [id] : [id, list]
}

function has(id: string, list: RoomList, room: Room): boolean {
  if (typeof list === 'string') return room === id || room === list
  return list instanceof Set ? list.has(room) : list.includes(room)
}

function withRoom(id: string, list: RoomList, room: Room): RoomList {
  if (list instanceof Set) return list.add(room)
  if (typeof list === 'string') return list === id ? room : [id, list, room]
  // Its own room, and one more: the name of that one stands for both.
  if (list.length === 0 && room === id) return id
  if (list.length === 1 && list[0] === id) return room
  // `concat` for the exact length (`push` reserves room for 16 more).
  return list.length < LIST_ROOMS ? list.concat(room) : new Set(list).add(room)
}

/** `list` without `room`, which it holds, and which is never the socket's own (see `del`). */
function withoutRoom(id: string, list: RoomList, room: Room): RoomList {
  // A string that holds a room besides the socket's own: that room is `room`.
  if (typeof list === 'string') return id
  if (!(list instanceof Set)) return list.filter((r) => r !== room)
  list.delete(room)
  return list
}
