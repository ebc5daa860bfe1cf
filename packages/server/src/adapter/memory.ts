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

/** Rooms and broadcast for a single node, in memory. The default adapter. */
export class MemoryAdapter implements Adapter {
  readonly #rooms = new Map<Room, Set<string>>()
  readonly #socketRooms = new Map<string, Set<Room>>()

  constructor(private readonly sockets: LocalSockets) {}

  addAll(id: string, rooms: Iterable<Room>): void {
    let mine = this.#socketRooms.get(id)
    if (!mine) {
      mine = new Set()
      this.#socketRooms.set(id, mine)
    }
    for (const room of rooms) {
      mine.add(room)
      let members = this.#rooms.get(room)
      if (!members) {
        members = new Set()
        this.#rooms.set(room, members)
      }
      members.add(id)
    }
  }

  del(id: string, room: Room): void {
    this.#socketRooms.get(id)?.delete(room)
    this.#leave(id, room)
  }

  delAll(id: string): void {
    const mine = this.#socketRooms.get(id)
    if (!mine) return
    for (const room of mine) this.#leave(id, room)
    this.#socketRooms.delete(id)
  }

  socketRooms(id: string): ReadonlySet<Room> | undefined {
    return this.#socketRooms.get(id)
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
      const members = this.#rooms.get(room)
      if (!members) continue
      excluded ??= new Set()
      for (const id of members) excluded.add(id)
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
      for (const room of options.rooms) for (const id of this.#rooms.get(room) ?? []) add(id)
    } else {
      const ids = new Set<string>()
      for (const room of options.rooms) for (const id of this.#rooms.get(room) ?? []) ids.add(id)
      for (const id of ids) add(id)
    }
    return found
  }

  #leave(id: string, room: Room): void {
    const members = this.#rooms.get(room)
    if (!members) return
    members.delete(id)
    if (members.size === 0) this.#rooms.delete(room)
  }
}
