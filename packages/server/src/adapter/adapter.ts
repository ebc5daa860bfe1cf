import type { JsonValue, ParleyError, PreparedEvent } from '@parley/protocol'
import type { Handshake } from '../types.js'

/** A room's name. Every socket is also in the room named by its own id. */
export type Room = string

/** Which sockets a broadcast or a socket operation reaches. */
export interface BroadcastOptions {
  /** Sockets in any of these rooms; every socket when empty. */
  rooms: ReadonlySet<Room>
  /** Minus sockets in any of these rooms (a sender excludes itself by its own room). */
  except: ReadonlySet<Room>
  /** Dropped where a socket cannot take it now, never kept or replayed. */
  volatile: boolean
  /** This node only, even when the adapter spans several. */
  local: boolean
}

/**
 * One event for many sockets. A multi-node adapter ships `name` and `args` to the other nodes;
 * each node prepares the encoding once for all of its sockets.
 */
export interface BroadcastMessage {
  name: string
  args: JsonValue[] | unknown[]
  /** The shared encoding, made on first use on this node. */
  prepared(): PreparedEvent
}

/** A reply to a broadcast that asked for acknowledgements: the reply's first argument, or why not. */
export type BroadcastReply = { ok: true; value: unknown } | { ok: false; error: ParleyError<string> }

/** The adapter's view of a socket on this node. */
export interface LocalSocket {
  readonly id: string
  /** Sends a prepared event to this socket (numbered unless volatile). */
  deliver(event: PreparedEvent, volatile: boolean): void
  /** Same, asking for a reply within `timeout` ms. */
  deliverWithAck(event: PreparedEvent, timeout: number, settle: (reply: BroadcastReply) => void): void
  /** A plain description, safe to hand to the application of any node. */
  describe(): SocketDescription
  /** Ends the socket's session ('server disconnect'). */
  disconnect(): void
}

/** What `fetchSockets()` gives for a socket, wherever it lives. */
export interface SocketDescription {
  id: string
  handshake: Handshake
  rooms: Set<Room>
  data: unknown
}

/** The server's side of the contract: how an adapter finds the sockets of this node. */
export interface LocalSockets {
  get(id: string): LocalSocket | undefined
}

/**
 * Rooms and broadcast, and every way the server reaches sockets other than the one at hand.
 * The in-memory adapter serves one node; a multi-node adapter (Redis, ...) implements the same
 * calls across nodes: see docs/adapter.md. Methods that may cross the network return promises.
 */
export interface Adapter {
  /** Puts a socket of this node into rooms. */
  addAll(id: string, rooms: Iterable<Room>): void | Promise<void>
  /** Takes a socket of this node out of a room. */
  del(id: string, room: Room): void | Promise<void>
  /** Takes a socket of this node out of every room (its session ended). */
  delAll(id: string): void
  /** The rooms of a socket of this node. */
  socketRooms(id: string): ReadonlySet<Room> | undefined
  /** Delivers an event to every matching socket (on every node unless `local`). */
  broadcast(message: BroadcastMessage, options: BroadcastOptions): void
  /**
   * Delivers an event that asks for replies: `expect(n)` is called (once per node) with how many
   * sockets were reached, then `reply` once per socket.
   */
  broadcastWithAck(
    message: BroadcastMessage,
    options: BroadcastOptions,
    timeout: number,
    expect: (count: number) => void,
    reply: (reply: BroadcastReply) => void,
  ): void
  /** Describes every matching socket. */
  fetchSockets(options: BroadcastOptions): Promise<SocketDescription[]>
  /** Makes every matching socket join rooms. */
  addSockets(options: BroadcastOptions, rooms: Room[]): void | Promise<void>
  /** Makes every matching socket leave rooms. */
  delSockets(options: BroadcastOptions, rooms: Room[]): void | Promise<void>
  /** Ends the session of every matching socket. */
  disconnectSockets(options: BroadcastOptions): void | Promise<void>
  /**
   * Where the session `sid` lives, for an SSE or polling request that reached this node:
   * 'local', 'unknown', or a node id that a multi-node adapter forwards the request to (so that
   * no sticky sessions are needed). The in-memory adapter owns every session it knows.
   */
  sessionOwner?(
    sid: string,
  ): 'local' | 'unknown' | { node: string } | Promise<'local' | 'unknown' | { node: string }>
  /** Releases what the adapter holds (connections, timers). */
  close?(): void | Promise<void>
}

/** Makes the adapter for a server; the plugin option `adapter`. */
export type AdapterFactory = (sockets: LocalSockets) => Adapter
