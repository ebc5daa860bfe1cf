// The broadcasts this node read on the channel lately, kept a few seconds: what a claimer gives a
// session whose old node read them but could not put them into its tail (see `ReadWindow`).
import type { Room } from '@parley/server'
import { GONE_PLACE_MS, holds } from './places.js'
import { SEAL_WAIT_MS } from './takeover.js'
import type { Place, WireOptions } from './wire.js'

/**
 * How long a broadcast read here is kept (ms): a claimer looks back from its tail read, which
 * comes at most `SEAL_WAIT_MS` after its marker (and a round trip), to what its old node, slow
 * to read the channel, read after the last batch of the tail that landed. The margin covers that
 * round trip and an old node that lags this much behind: one that lags more leaves the takeover
 * incomplete, as before.
 */
export const READ_WINDOW_MS = SEAL_WAIT_MS + 5000

/**
 * The most event text (UTF-16 units, as read: about as many bytes for ASCII) the window holds:
 * a flood of large broadcasts pushes the oldest out, whatever their age, so that this memory is
 * bounded on every node. A takeover that would need one pushed out is incomplete, as before.
 */
export const READ_WINDOW_UNITS = 4 * 1024 * 1024

/** The most broadcasts the window holds, however small: each costs an entry beside its text. */
export const READ_WINDOW_COUNT = 20_000

/**
 * The clock of `ReadWindow` (ms, monotonic). A named object, as `placesClock`, so that a test can
 * age the window alone.
 */
export const windowClock = { now: (): number => performance.now() }

/** A broadcast read here, as it came on the channel. */
export interface ReadBroadcast {
  /** The node that sent it, and its count there. */
  node: string
  q: number
  /** The event, as `PreparedEvent.text(0, 0)`: decoded only when a takeover gives it. */
  e: string
  o: WireOptions
}

interface Entry extends ReadBroadcast {
  /** Its place among every broadcast read here: rises by one each. */
  index: number
  /** When it was read (`windowClock`). */
  at: number
}

/** What a takeover can give a session from the window (see `ReadWindow.since`). */
export interface Recovered {
  /** The broadcasts the session's old node did not put into its tail and the session takes, in channel order. */
  broadcasts: ReadBroadcast[]
  /** False when the window no longer reaches back to the old node's place for some node. */
  whole: boolean
}

/**
 * The non-volatile broadcasts this node read on `<prefix>:broadcast` over the last
 * `READ_WINDOW_MS`, at most `READ_WINDOW_UNITS` of event text and `READ_WINDOW_COUNT` of them,
 * its own included (they come back as every node's do).
 *
 * Every node reads the channel in one order. A claimer that reads a tail its old node did not
 * seal in time gets the batches that landed, with that node's places (see places.ts): every
 * broadcast at or below them that reached the session is in the snapshot or the tail. Those the
 * old node read after, before the claimer's cut (its marker, or its join before the marker came
 * back), went to no tail that was read, and the claimer's socket was in no room then: the
 * claimer read them too, here. `since` gives them. Volatile ones are not kept: a session being
 * handed off drops them, as a socket that cannot take one now does.
 */
export class ReadWindow {
  readonly #entries: Entry[] = []
  /** The first entry still held in `#entries` (a queue taken from the front without copying). */
  #head = 0
  #units = 0
  #next = 0
  /** By node, the highest count let go, and when it was read: a place below it is out of reach. */
  readonly #letGo = new Map<string, { q: number; at: number }>()

  /** The place of the next broadcast to be read: a takeover's cut, taken at its join. */
  mark(): number {
    return this.#next
  }

  /** A broadcast is read on the channel (before any socket takes it). */
  read(node: string, q: number | undefined, e: string, o: WireOptions): void {
    const index = this.#next++
    // Without a count (a node of an earlier version) no place can tell whether a tail holds it.
    if (q === undefined || o.v) return
    const now = windowClock.now()
    this.#entries.push({ node, q, e, o, index, at: now })
    this.#units += e.length
    this.#trim(now)
  }

  /**
   * The broadcasts read before `cut` (see `mark`) that `places` does not hold (the old node had
   * not read them as of its last write), whose rooms the session's socket was in (`rooms`, its
   * own id among them) and not in their `except`. A node missing from `places` had none of its
   * broadcasts read by the old node then. `whole` is false when, for some node, the window may
   * have let go of one above its place: none of that node's is given then, as before the window
   * (a session that missed one of them takes none of the rest, rather than a gap inside them).
   */
  since(cut: number, places: ReadonlyMap<string, Place>, rooms: ReadonlySet<Room>): Recovered {
    const now = windowClock.now()
    this.#trim(now)
    // The nodes of which one above the old node's place may have been let go.
    const short = new Set<string>()
    for (const [node, letGo] of this.#letGo) {
      // Read that long ago, no tail's place can still be below it (see `GONE_PLACE_MS`).
      if (now - letGo.at > GONE_PLACE_MS) continue
      const place = places.get(node)
      if (place === undefined || letGo.q > place.q) short.add(node)
    }
    const broadcasts: ReadBroadcast[] = []
    for (let i = this.#head; i < this.#entries.length; i++) {
      const entry = this.#entries[i] as Entry
      if (entry.index >= cut) break
      if (short.has(entry.node)) continue
      const place = places.get(entry.node)
      if (place && holds(place, entry.q)) continue
      if (takes(entry.o, rooms)) broadcasts.push(entry)
    }
    return { broadcasts, whole: short.size === 0 }
  }

  /** Lets the oldest go: past `READ_WINDOW_MS`, or while over either bound. */
  #trim(now: number): void {
    const entries = this.#entries
    while (this.#head < entries.length) {
      const oldest = entries[this.#head] as Entry
      const over = this.#units > READ_WINDOW_UNITS || entries.length - this.#head > READ_WINDOW_COUNT
      if (!over && now - oldest.at <= READ_WINDOW_MS) break
      this.#head++
      this.#units -= oldest.e.length
      this.#letGo.delete(oldest.node)
      this.#letGo.set(oldest.node, { q: oldest.q, at: oldest.at })
    }
    // Compacted once half of it is let go: each entry is moved once at most per pass.
    if (this.#head > 1024 && this.#head * 2 > entries.length) {
      entries.splice(0, this.#head)
      this.#head = 0
    }
    // Each process is a new node id: the nodes let go of longest ago are forgotten first.
    while (this.#letGo.size > MAX_LET_GO_NODES) {
      const oldest = this.#letGo.keys().next().value
      if (oldest === undefined) break
      this.#letGo.delete(oldest)
    }
  }
}

/** The most nodes whose last count let go the window remembers: far above a cluster's nodes. */
const MAX_LET_GO_NODES = 256

/** A socket in `rooms` takes a broadcast with `options`, as `MemoryAdapter` picks its sockets. */
function takes(options: WireOptions, rooms: ReadonlySet<Room>): boolean {
  if (options.x.some((room) => rooms.has(room))) return false
  return options.r.length === 0 || options.r.some((room) => rooms.has(room))
}
