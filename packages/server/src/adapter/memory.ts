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
 * a socket's rooms are an array of the exact length until it is in many, and a socket's own
 * room (its id, which every socket joins) is not kept in the room index at all: its one member
 * is known from the socket's own list.
 */
export class MemoryAdapter implements Adapter {
  readonly #rooms = new Map<Room, Set<string>>()
  readonly #socketRooms = new Map<string, RoomList>()

  constructor(private readonly sockets: LocalSockets) {}

  addAll(id: string, rooms: Iterable<Room>): void {
    let mine = this.#socketRooms.get(id) ?? NO_ROOMS
    for (const room of rooms) {
      if (has(mine, room)) continue
      mine = withRoom(mine, room)
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
    const mine = this.#socketRooms.get(id)
    if (mine && has(mine, room)) this.#socketRooms.set(id, withoutRoom(mine, room))
    this.#leave(id, room)
  }

  delAll(id: string): void {
    const mine = this.#socketRooms.get(id)
    if (!mine) return
    for (const room of mine) this.#leave(id, room)
    this.#socketRooms.delete(id)
  }

  socketRooms(id: string): ReadonlySet<Room> | undefined {
    const mine = this.#socketRooms.get(id)
    return mine === undefined || mine instanceof Set ? mine : new Set(mine)
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

  broadcastWithAck(
    message: BroadcastMessage,
    options: BroadcastOptions,
    timeout: number,
    expect: (count: number) => void,
    reply: (reply: BroadcastReply) => void,
  ): void {
    const targets = this.#match(options)
    expect(targets.length)
    if (targets.length === 0) return
    const event = message.prepared()
    for (const socket of targets) socket.deliverWithAck(event, timeout, reply)
  }

  async fetchSockets(options: BroadcastOptions): Promise<SocketDescription[]> {
    return this.#match(options).map((socket) => socket.describe())
  }

  addSockets(options: BroadcastOptions, rooms: Room[]): void {
    for (const socket of this.#match(options)) this.addAll(socket.id, rooms)
  }

  delSockets(options: BroadcastOptions, rooms: Room[]): void {
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
    if (!own || !has(own, room)) return members ?? NO_ROOMS
    return members ? [room, ...members] : [room]
  }

  #leave(id: string, room: Room): void {
    const members = this.#rooms.get(room)
    if (!members) return
    members.delete(id)
    if (members.size === 0) this.#rooms.delete(room)
  }
}

/** A socket's rooms: an array of the exact length while short, a Set once long. */
type RoomList = readonly Room[] | Set<Room>

const NO_ROOMS: readonly Room[] = []

/** Past this many rooms a socket's list becomes a Set (a linear scan per join gets slow). */
const LIST_ROOMS = 16

function has(list: RoomList, room: Room): boolean {
  return list instanceof Set ? list.has(room) : list.includes(room)
}

function withRoom(list: RoomList, room: Room): RoomList {
  if (list instanceof Set) return list.add(room)
  // `concat` for the exact length (`push` reserves room for 16 more).
  return list.length < LIST_ROOMS ? list.concat(room) : new Set(list).add(room)
}

function withoutRoom(list: RoomList, room: Room): RoomList {
  if (!(list instanceof Set)) return list.filter((r) => r !== room)
  list.delete(room)
  return list
}
