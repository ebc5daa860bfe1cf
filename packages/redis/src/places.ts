import type { BroadcastMessage, BroadcastOptions } from '@parley/server'

/**
 * The most nodes whose place a node keeps (see `ReadPlaces`): far above the nodes of a cluster,
 * so that only nodes long gone (each process is a new node id) are ever let go.
 */
export const MAX_READ_PLACES = 256

/**
 * Where this node is on `<prefix>:broadcast`: for each node, the count `q` of the last of its
 * broadcasts read here. A node PUBLISHes its broadcasts on one connection, in the order of
 * their counts, so every node reads each node's counts rising.
 *
 * The node that hands a session off writes this with each append to the session's tail and
 * with its seal (see APPEND in handoff.ts): every broadcast at or below it was read here before
 * that write, and went into the tail if it reached the session. A claimer that joins the socket
 * before its marker came back (see `UncutSockets`) reads it with the tail, and knows which of
 * the broadcasts its slow subscriber reads after the join the tail holds already.
 */
export class ReadPlaces {
  /** By node, oldest read first: the first ones are let go past `MAX_READ_PLACES`. */
  readonly #places = new Map<string, number>()
  /** `text`, made once per change: a drain writes it with every append. */
  #text: string | undefined = ''

  /** Broadcast `q` of `node` is read (before it reaches this node's sockets). */
  read(node: string, q: number): void {
    const place = this.#places.get(node)
    if (place !== undefined && q <= place) return
    this.#places.delete(node)
    this.#places.set(node, q)
    if (this.#places.size > MAX_READ_PLACES) {
      const oldest = this.#places.keys().next().value
      if (oldest !== undefined) this.#places.delete(oldest)
    }
    this.#text = undefined
  }

  /** As JSON, `{ node: q }`; '' while nothing was read. */
  get text(): string {
    this.#text ??= JSON.stringify(Object.fromEntries(this.#places))
    return this.#text
  }
}

/** A broadcast read while a socket waits for the tail's places. */
interface Held {
  node: string
  q: number | undefined
  message: BroadcastMessage
  options: BroadcastOptions
}

/** A socket joined without a cut (see `UncutSockets`). */
interface Uncut {
  /** Until the tail is read (bounded: see `HandOffStore.finish`), what reached it, in order. */
  held: Held[] | undefined
  /** The old node's places, once read: by node, the count at or below which the tail has it. */
  places: Map<string, number> | undefined
}

/**
 * The sockets of this node that a takeover joined before its claim marker came back (its
 * subscriber slow to read, or every marker refused: see takeover.ts). The broadcasts that
 * subscriber reads after the join may be before the marker on the channel (or, with no marker,
 * read by the old node before the tail was read), and in the tail already. Their count tells:
 * the old node wrote with the tail where it was on the channel (`ReadPlaces`), and a broadcast
 * at or below that place is not delivered again here, this node's own included (on top of the
 * cut's own rule for them, see cut.ts, which lets through those PUBLISHed after a marker that
 * may run). One without a count (a node of an earlier version) is delivered, as before.
 *
 * Until the tail is read, the places are not known: what reaches the socket meanwhile (one
 * round trip) is held, in order, and delivered once they are, less what the tail holds. A
 * tail without places (written by a node of an earlier version, or not read: Redis did not
 * answer) lets all of it through.
 *
 * A node's places are passed once one of its broadcasts above them is read: every later one is
 * above them too. The socket is let go once every node's is, or when it leaves this node.
 */
export class UncutSockets {
  readonly #sockets = new Map<string, Uncut>()

  constructor(
    /** Delivers `message` to socket `id` alone, if it still matches `options`. */
    private readonly deliver: (message: BroadcastMessage, options: BroadcastOptions, id: string) => void,
  ) {}

  get empty(): boolean {
    return this.#sockets.size === 0
  }

  /** Socket `id` joins without a cut: what reaches it is held until `read`. */
  joined(id: string): void {
    this.#sockets.set(id, { held: [], places: undefined })
  }

  /**
   * The tail of socket `id`'s session was read, with the old node's `places` (undefined when it
   * wrote none): what was held is delivered, less the broadcasts at or below them.
   */
  read(id: string, places: ReadonlyMap<string, number> | undefined): void {
    const socket = this.#sockets.get(id)
    if (!socket?.held) return
    const held = socket.held
    socket.held = undefined
    socket.places = places && places.size > 0 ? new Map(places) : undefined
    for (const broadcast of held) {
      if (!this.#passes(socket, broadcast.node, broadcast.q)) continue
      // Passed: its node's later broadcasts are above its place too.
      socket.places?.delete(broadcast.node)
      this.deliver(broadcast.message, broadcast.options, id)
    }
    if (!socket.places?.size) this.#sockets.delete(id)
  }

  /** Socket `id` left this node (or its rooms): nothing more to filter for it. */
  forget(id: string): void {
    this.#sockets.delete(id)
  }

  /**
   * Broadcast `q` of `node` is read, before it is delivered: the nodes whose places it passes are
   * let go (a later one of theirs is above them as well).
   */
  readFrom(node: string, q: number | undefined): void {
    if (q === undefined) return
    for (const [id, socket] of this.#sockets) {
      const place = socket.places?.get(node)
      if (place === undefined || q <= place) continue
      socket.places?.delete(node)
      if (socket.places?.size === 0) this.#sockets.delete(id)
    }
  }

  /**
   * Narrows `only` (the sockets a broadcast reaches now): a socket joined without a cut takes it
   * now unless it is held, or is at or below the old node's place for its node.
   */
  only(broadcast: Held, only: ((id: string) => boolean) | undefined): (id: string) => boolean {
    return (id) => {
      if (only && !only(id)) return false
      const socket = this.#sockets.get(id)
      if (!socket) return true
      if (socket.held) {
        socket.held.push(broadcast)
        return false
      }
      return this.#passes(socket, broadcast.node, broadcast.q)
    }
  }

  #passes(socket: Uncut, node: string, q: number | undefined): boolean {
    const place = q === undefined ? undefined : socket.places?.get(node)
    return place === undefined || q === undefined || q > place
  }
}
