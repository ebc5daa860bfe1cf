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
 * How long after the last of its broadcasts read here a node out of the live set (it said
 * goodbye, or its record lapsed) still has its place written (see `ReadPlaces`). A place only
 * filters what a claimer's subscriber reads after its join, which comes after the write: to
 * read there a broadcast that this node read more than this long before, that subscriber would
 * have to be as far behind this node's. Ten minutes is far past every lag the handoff waits
 * for (`SEAL_WAIT_MS`, a handoff's `ttl`), and past what Redis lets a subscriber fall behind
 * under any traffic (its default `client-output-buffer-limit pubsub` cuts one that holds 8 MB
 * for 60 s). Past it, at worst a broadcast of that node reaches the session twice, never is lost.
 */
export const GONE_PLACE_MS = 10 * 60_000

/**
 * The clock of `ReadPlaces` (ms). A named object, as `sealWaits` in takeover.ts, so that a test
 * can move it past `GONE_PLACE_MS` for these places alone.
 */
export const placesClock = { now: (): number => performance.now() }

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
  /** By node, when the last of its broadcasts was read here (`placesClock`). */
  readonly #readAt = new Map<string, number>()
  /** Until then (`placesClock`), `#text` and `#readText` leave out no more nodes than they do. */
  #keptUntil = Number.POSITIVE_INFINITY

  constructor(
    /**
     * Whether `node` is in the live set (this node included): a node out of it has its place
     * written for `GONE_PLACE_MS` past the last of its broadcasts read here, no longer.
     */
    private readonly live: (node: string) => boolean = () => true,
  ) {}

  /** The count of the last of `node`'s broadcasts read here; undefined when none is (or was let go). */
  at(node: string): number | undefined {
    return this.#places.get(node)
  }

  /** Broadcast `q` of `node` is read (before it reaches this node's sockets). */
  read(node: string, q: number): void {
    const place = this.#places.get(node)
    if (place !== undefined && q <= place) return
    this.#places.delete(node)
    this.#places.set(node, q)
    this.#readAt.set(node, placesClock.now())
    if (this.#places.size > MAX_READ_PLACES) {
      const oldest = this.#places.keys().next().value
      if (oldest !== undefined) {
        this.#places.delete(oldest)
        this.#skipped.delete(oldest)
        this.#readAt.delete(oldest)
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
    this.#expire()
    this.#text ??= this.#write(true)
    return this.#text
  }

  /** As `text`, without the counts skipped: what was read alone, `{ node: q }`. */
  get readText(): string {
    this.#expire()
    this.#readText ??= this.#write(false)
    return this.#readText
  }

  /** The live set changed: a node out of it may have a place no longer written. */
  liveChanged(): void {
    this.#text = undefined
    this.#readText = undefined
  }

  /** Made anew once a node written in them may be left out now (see `GONE_PLACE_MS`). */
  #expire(): void {
    if (placesClock.now() < this.#keptUntil) return
    this.#keptUntil = Number.POSITIVE_INFINITY
    this.liveChanged()
  }

  /**
   * As `text` (`readText` without `skipped`), with `node`'s place raised to `floor` when it is
   * below: every broadcast of `node` up to `floor` reached the session some other way (a drain's
   * own broadcasts that its socket took when they were emitted, before the snapshot: see
   * `HandingOff.handOff`), whether read back here yet or not.
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
    const now = placesClock.now()
    const places: Record<string, number | (number | [number, number])[]> = {}
    for (const node of nodes) {
      const readAt = this.#readAt.get(node)
      if (node !== raised && readAt !== undefined) {
        // Gone long enough: no claimer's subscriber is that far behind (see `GONE_PLACE_MS`).
        if (now - readAt > GONE_PLACE_MS) {
          if (!this.live(node)) continue
          // Live and past it: left out only once it leaves the live set (see `liveChanged`).
        } else this.#keptUntil = Math.min(this.#keptUntil, readAt + GONE_PLACE_MS)
      }
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
    return Object.keys(places).length === 0 ? '' : JSON.stringify(places)
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
export function holds(place: Place, q: number): boolean {
  return q <= place.q || place.skipped.some(([from, to]) => from <= q && q <= to)
}

/**
 * Broadcast `q` of the node `place` is for, read (and delivered or not), reaches the top of all
 * that `place` holds: every later one of that node is above it, and the place filters nothing more.
 */
export function reached(place: Place, q: number): boolean {
  return q >= place.q && place.skipped.every(([, to]) => q >= to)
}
