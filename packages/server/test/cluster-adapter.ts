// A multi-node adapter for tests: several Parley servers in one process, joined by an in-memory
// "bus" that stands in for Redis pub/sub. What crosses from one node to another is copied
// (structuredClone) and delivered on a later turn, as it would be over a network, so that the
// tests see what a real multi-node adapter must cope with: plain data, and answers that come late.
import { type PreparedEvent, prepareEvent, type WireValue } from '@parley/protocol'
import {
  type Adapter,
  type AdapterFactory,
  type BroadcastMessage,
  type BroadcastOptions,
  type BroadcastReply,
  type LocalSockets,
  MemoryAdapter,
  type Room,
  type RoutedRequest,
  type RoutedResponse,
  type SessionOwnerAnswer,
  type SocketDescription,
} from '@parley/server'

/** A later turn of the event loop: what a message to another node costs at least. */
const hop = () => new Promise<void>((resolve) => setImmediate(resolve))

export class Cluster {
  readonly nodes = new Map<string, ClusterAdapter>()
  /** Broadcasts shipped to another node, for tests that count them. */
  shipped = 0

  /** The `adapter` option of the server that is node `name`. */
  adapter(name: string): AdapterFactory {
    return (sockets) => {
      const adapter = new ClusterAdapter(this, name, sockets)
      this.nodes.set(name, adapter)
      return adapter
    }
  }
}

export class ClusterAdapter implements Adapter {
  /** This node's own rooms: a multi-node adapter keeps local membership locally. */
  readonly memory: MemoryAdapter

  constructor(
    private readonly cluster: Cluster,
    readonly node: string,
    readonly sockets: LocalSockets,
  ) {
    this.memory = new MemoryAdapter(sockets)
  }

  addAll(id: string, rooms: Iterable<Room>): void {
    this.memory.addAll(id, rooms)
  }

  del(id: string, room: Room): void {
    this.memory.del(id, room)
  }

  delAll(id: string): void {
    this.memory.delAll(id)
  }

  socketRooms(id: string): ReadonlySet<Room> | undefined {
    return this.memory.socketRooms(id)
  }

  broadcast(message: BroadcastMessage, options: BroadcastOptions): void {
    this.memory.broadcast(message, options)
    if (options.local) return
    for (const other of this.#others()) {
      const shipped = this.#ship(message, options)
      void hop().then(() => other.memory.broadcast(shipped.message, shipped.options))
    }
  }

  broadcastWithAck(
    message: BroadcastMessage,
    options: BroadcastOptions,
    timeout: number,
    expect: (count: number) => void,
    reply: (reply: BroadcastReply) => void,
  ): void {
    const others = options.local ? [] : this.#others()
    let waiting = others.length + 1
    let total = 0
    const counted = (count: number) => {
      total += count
      if (--waiting === 0) expect(total)
    }
    this.memory.broadcastWithAck(message, options, timeout, counted, reply)
    for (const other of others) {
      const shipped = this.#ship(message, options)
      void hop().then(() =>
        other.memory.broadcastWithAck(
          shipped.message,
          shipped.options,
          timeout,
          (count) => void hop().then(() => counted(count)),
          (answer) => void hop().then(() => reply(structuredClone(answer))),
        ),
      )
    }
  }

  async fetchSockets(options: BroadcastOptions): Promise<SocketDescription[]> {
    const found = await this.#everywhere(options, (node, o) => node.memory.fetchSockets(o))
    return found.flat().map((socket) => structuredClone(socket))
  }

  async addSockets(options: BroadcastOptions, rooms: Room[]): Promise<void> {
    await this.#everywhere(options, (node, o) => node.memory.addSockets(o, rooms))
  }

  async delSockets(options: BroadcastOptions, rooms: Room[]): Promise<void> {
    await this.#everywhere(options, (node, o) => node.memory.delSockets(o, rooms))
  }

  async disconnectSockets(options: BroadcastOptions): Promise<void> {
    await this.#everywhere(options, (node, o) => node.memory.disconnectSockets(o))
  }

  async sessionOwner(sid: string): Promise<SessionOwnerAnswer> {
    if (this.sockets.hasSession(sid)) return 'local'
    await hop()
    for (const other of this.#others()) if (other.sockets.hasSession(sid)) return { node: other.node }
    return 'unknown'
  }

  async routeRequest(node: string, request: RoutedRequest): Promise<RoutedResponse> {
    const owner = this.cluster.nodes.get(node)
    if (!owner) throw new Error(`no node ${node}`)
    await hop()
    return owner.sockets.serve(structuredClone(request))
  }

  #others(): ClusterAdapter[] {
    return [...this.cluster.nodes.values()].filter((node) => node !== this)
  }

  /** Runs an operation on this node and, unless `local`, on every other one (after a hop). */
  #everywhere<T>(
    options: BroadcastOptions,
    run: (node: ClusterAdapter, options: BroadcastOptions) => T | Promise<T>,
  ): Promise<Awaited<T>[]> {
    const nodes = options.local ? [this] : [this, ...this.#others()]
    return Promise.all(
      nodes.map(async (node) => {
        if (node === this) return await run(node, options)
        await hop()
        return await run(node, structuredClone(options))
      }),
    )
  }

  /** What another node gets: copies of the name, arguments and options, encoded there once. */
  #ship(message: BroadcastMessage, options: BroadcastOptions) {
    this.cluster.shipped++
    const name = message.name
    const args = structuredClone(message.args) as WireValue[]
    let prepared: PreparedEvent | undefined
    return {
      message: {
        name,
        args,
        prepared: () => {
          prepared ??= prepareEvent(name, args)
          return prepared
        },
      } satisfies BroadcastMessage,
      options: structuredClone(options),
    }
  }
}
