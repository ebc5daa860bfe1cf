import type { BroadcastMessage, BroadcastOptions } from '@parley/server'
import type { Place } from './wire.js'

/**
 * The most nodes whose place a node keeps (see `ReadPlaces`): far above the nodes of a cluster,
 * so that only nodes long gone (each process is a new node id) are ever let go.
 */
export const MAX_READ_PLACES = 256

/**
 * The most ranges of its own given-up broadcasts a node keeps above its place (see
 * `ReadPlaces.skipped`): an outage gives one range; past this, the oldest is let go, and should
 * Redis run one of those late, a claimer joined early may deliver it a second time (never lose it).
 */
export const MAX_SKIPPED_RANGES = 64

/**
 * Where this node is on `<prefix>:broadcast`: for each node, the count `q` of the last of its
 * broadcasts read here. A node PUBLISHes its broadcasts on one connection, in the order of
 * their counts, so every node reads each node's counts rising.
 *
 * This node's own broadcasts whose PUBLISH was given up (no answer within `requestTimeout`,
 * refused, or never sent) reached its sockets then, those being handed off included (see
 * cut.ts), without being read here: Redis may still run one late. They are kept as ranges of
 * counts above the place (`skipped`), not by raising the place: an earlier one, PUBLISHed and
 * answered but not read back here yet, is still on its way, and raising the place would have
 * the claimer drop it though no tail holds it. Counts are exact, so nothing else is dropped.
 *
 * The node that hands a session off writes this with the snapshot, with each append to the
 * session's tail and with its seal (see WRITE and APPEND in handoff.ts): every broadcast at or
 * below it was read here before that write, and went into the snapshot or the tail if it reached
 * the session. Its place for itself is raised, for that session, to the last of its own that the
 * socket took when it was emitted (see `textWith`): the snapshot holds those, though one emitted
 * right before the handoff may not be read back here by the last write (this raise drops none
 * still on its way to the socket: they are above it). A claimer that joins the socket before its
 * marker came back (see `UncutSockets`) reads it with the tail, and knows which of the
 * broadcasts its slow subscriber reads after the join the snapshot or the tail holds already.
 */
export class ReadPlaces {
  /** By node, oldest read first: the first ones are let go past `MAX_READ_PLACES`. */
  readonly #places = new Map<string, number>()
  /** By node, the ranges `[from, to]` above its place taken without being read, in order. */
  readonly #skipped = new Map<string, [number, number][]>()
  /** `text`, made once per change: a drain writes it with every append. */
  #text: string | undefined = ''
  /** `readText`, the same way. */
  #readText: string | undefined = ''

  /** Broadcast `q` of `node` is read (before it reaches this node's sockets). */
  read(node: string, q: number): void {
    const place = this.#places.get(node)
    if (place !== undefined && q <= place) return
    this.#places.delete(node)
    this.#places.set(node, q)
    if (this.#places.size > MAX_READ_PLACES) {
      const oldest = this.#places.keys().next().value
      if (oldest !== undefined) {
        this.#places.delete(oldest)
        this.#skipped.delete(oldest)
      }
    }
    const skipped = this.#skipped.get(node)
    if (skipped) {
      // At or below the place now: the place holds them.
      const above = skipped
        .filter(([, to]) => to > q)
        .map(([from, to]): [number, number] => [Math.max(from, q + 1), to])
      if (above.length > 0) this.#skipped.set(node, above)
      else this.#skipped.delete(node)
    }
    this.#text = undefined
    this.#readText = undefined
  }

  /**
   * Broadcast `q` of `node` (this node's own) reached this node's sockets without being read: its
   * PUBLISH was given up. Written with the place, so that a claimer does not deliver it again
   * should Redis run it late.
   */
  skipped(node: string, q: number): void {
    if (q <= (this.#places.get(node) ?? 0)) return
    const ranges = this.#skipped.get(node) ?? []
    const last = ranges.at(-1)
    if (last && last[0] <= q && q <= last[1]) return
    if (last && q === last[1] + 1) last[1] = q
    else {
      ranges.push([q, q])
      // Given up out of order (rare: they are given up in the order they were sent): merged.
      if (last && q < last[0]) mergeRanges(ranges)
    }
    if (ranges.length > MAX_SKIPPED_RANGES) ranges.shift()
    this.#skipped.set(node, ranges)
    this.#text = undefined
  }

  /**
   * As JSON, `{ node: q }`, or `{ node: [q, [from, to], ...] }` for a node with counts skipped;
   * '' while nothing was read or skipped.
   */
  get text(): string {
    this.#text ??= this.#write(true)
    return this.#text
  }

  /** As `text`, without the counts skipped: what was read alone, `{ node: q }`. */
  get readText(): string {
    this.#readText ??= this.#write(false)
    return this.#readText
  }

  /**
   * As `text` (`readText` without `skipped`), with `node`'s place raised to `floor` when it is
   * below: every broadcast of `node` up to `floor` reached the session some other way (a drain's
   * own broadcasts that its socket took when they were emitted, before the snapshot: see
   * `RedisAdapter.handOff`), whether read back here yet or not.
   */
  textWith(node: string, floor: number, skipped: boolean): string {
    if (floor <= (this.#places.get(node) ?? 0)) return skipped ? this.text : this.readText
    return this.#write(skipped, node, floor)
  }

  /** The JSON of `text` (of `readText` without `skipped`), `raised`'s place at least `floor`. */
  #write(skipped: boolean, raised?: string, floor = 0): string {
    const nodes = new Set(this.#places.keys())
    if (skipped) for (const node of this.#skipped.keys()) nodes.add(node)
    if (raised !== undefined) nodes.add(raised)
    if (nodes.size === 0) return ''
    const places: Record<string, number | (number | [number, number])[]> = {}
    for (const node of nodes) {
      let q = this.#places.get(node) ?? 0
      let ranges = skipped ? this.#skipped.get(node) : undefined
      if (node === raised && floor > q) {
        q = floor
        // At or below the place now: the place holds them.
        ranges = ranges
          ?.filter(([, to]) => to > q)
          .map(([from, to]): [number, number] => [Math.max(from, q + 1), to])
      }
      places[node] = ranges?.length ? [q, ...ranges] : q
    }
    return JSON.stringify(places)
  }
}

/** Sorts `ranges` and joins those that touch or overlap, in place. */
function mergeRanges(ranges: [number, number][]): void {
  ranges.sort((x, y) => x[0] - y[0])
  let at = 0
  for (const range of ranges.slice(1)) {
    const kept = ranges[at] as [number, number]
    if (range[0] <= kept[1] + 1) kept[1] = Math.max(kept[1], range[1])
    else ranges[++at] = range
  }
  ranges.length = at + 1
}

/** The tail holds broadcast `q` of the node `place` is for, if it reached the session. */
function holds(place: Place, q: number): boolean {
  return q <= place.q || place.skipped.some(([from, to]) => from <= q && q <= to)
}

/** Broadcast `q` is above all that `place` holds: so is every later one of its node. */
function passes(place: Place, q: number): boolean {
  return q > place.q && place.skipped.every(([, to]) => q > to)
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
  /** The old node's places, once read: by node, which of its broadcasts the tail has. */
  places: Map<string, Place> | undefined
  /** This node's own broadcasts it was left out of when they were emitted, by count. */
  owed: Set<number>
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
 * This node's own broadcasts are no exception: the old node may read one emitted here after the
 * join, before the tail is read, and put it into the tail. So while the tail is not read, the
 * socket is left out of them when they are emitted (as a positioned one is, see cut.ts) and
 * takes them when they come back, held and filtered as the others' (`leftOut`, `owes`); so it is
 * as long as one it was left out of is still on its way, so that they keep their order. One
 * whose PUBLISH is given up reaches it then, past the filter (`givenUp`): never run, the old
 * node cannot have it; sent and unanswered, Redis may still run it, and the old node put it
 * into the tail should it read it before the tail is read (the one case left that reaches the
 * session twice: the filter cannot tell, and dropping it could lose it).
 *
 * A node's places are passed once one of its broadcasts above them is read: every later one is
 * above them too. The socket is let go once every node's is and none of its own it was left out
 * of is on its way, or when it leaves this node.
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
    this.#sockets.set(id, { held: [], places: undefined, owed: new Set() })
  }

  /**
   * At the emit of one of this node's own broadcasts: false for the sockets that take it when it
   * comes back instead (their tail not read yet, or an earlier one they were left out of still
   * on its way), each added to `ids`, for `owe` once the broadcast has its count.
   */
  leftOut(ids: string[]): (id: string) => boolean {
    return (id) => {
      const socket = this.#sockets.get(id)
      if (!socket || (!socket.held && socket.owed.size === 0)) return true
      ids.push(id)
      return false
    }
  }

  /** Sockets `ids` were left out of this node's own broadcast `q` when it was emitted. */
  owe(ids: readonly string[], q: number): void {
    for (const id of ids) this.#sockets.get(id)?.owed.add(q)
  }

  /** The first of this node's own broadcasts that socket `id` was left out of and still waits for. */
  firstOwed(id: string): number | undefined {
    let first: number | undefined
    for (const q of this.#sockets.get(id)?.owed ?? []) if (first === undefined || q < first) first = q
    return first
  }

  /** Whether socket `id` was left out of own broadcast `q`, which came back: it takes it now. */
  owes(id: string, q: number | undefined): boolean {
    const socket = q === undefined ? undefined : this.#sockets.get(id)
    return socket?.owed.delete(q as number) === true
  }

  /**
   * This node's own broadcasts up to `q` came back, or are lost to this node (see
   * `RedisAdapter.#settleGap`): none of them is on its way any more to a socket left out of it.
   */
  back(q: number | undefined): void {
    if (q === undefined) return
    for (const [id, socket] of this.#sockets) {
      for (const owed of socket.owed) if (owed <= q) socket.owed.delete(owed)
      this.#letGo(id, socket)
    }
  }

  /**
   * The PUBLISH of this node's own broadcast `q` was given up (refused, never sent, or sent and
   * not answered): the sockets left out of it take it now, in order with what they hold. Never
   * run, the old node cannot have had it; run late, it does not reach them again (`owes`).
   */
  givenUp(q: number, message: BroadcastMessage, options: BroadcastOptions): void {
    for (const [id, socket] of this.#sockets) {
      if (!socket.owed.delete(q)) continue
      // No count: the places do not filter it (the old node may read a later one of this
      // node's, and its place for this node say nothing of this one).
      if (socket.held) socket.held.push({ node: '', q: undefined, message, options })
      else this.deliver(message, options, id)
      this.#letGo(id, socket)
    }
  }

  /**
   * The tail of socket `id`'s session was read, with the old node's `places` (undefined when it
   * wrote none): what was held is delivered, less the broadcasts at or below them.
   */
  read(id: string, places: ReadonlyMap<string, Place> | undefined): void {
    const socket = this.#sockets.get(id)
    if (!socket?.held) return
    const held = socket.held
    socket.held = undefined
    socket.places = places && places.size > 0 ? new Map(places) : undefined
    for (const broadcast of held) {
      if (!this.#passes(socket, broadcast.node, broadcast.q)) continue
      // Passed: its node's later broadcasts are above its place too.
      const place = socket.places?.get(broadcast.node)
      if (place && broadcast.q !== undefined && passes(place, broadcast.q))
        socket.places?.delete(broadcast.node)
      this.deliver(broadcast.message, broadcast.options, id)
    }
    this.#letGo(id, socket)
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
      if (place === undefined || !passes(place, q)) continue
      socket.places?.delete(node)
      this.#letGo(id, socket)
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

  /** Lets socket `id` go once there is nothing left to hold, filter or take back for it. */
  #letGo(id: string, socket: Uncut): void {
    if (!socket.held && !socket.places?.size && socket.owed.size === 0) this.#sockets.delete(id)
  }

  #passes(socket: Uncut, node: string, q: number | undefined): boolean {
    const place = q === undefined ? undefined : socket.places?.get(node)
    return place === undefined || q === undefined || !holds(place, q)
  }
}
