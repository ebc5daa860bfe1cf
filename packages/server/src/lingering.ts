import { InputFirstTimer } from './input-first-timer.js'
import type { RouteParams } from './route-params.js'
import { Timed, TimerQueue } from './timer-queue.js'
import type { Transport } from './transports/transport.js'

/**
 * What the last words of ended HTTP sessions may hold at once while the server runs, in
 * `maxBufferedBytes` (64 MiB by default), each counted as at least LINGER_MIN_BYTES (its
 * objects). Past it the oldest are forgotten: their client's next GET gets
 * PARLEY_UNKNOWN_SESSION and its resume the session's CLOSE, without what was queued before it.
 * A client that opens sessions and has them end (an invalid packet ends one) could otherwise
 * have the server keep a queue for each, for pingInterval + pingTimeout.
 */
const LINGERING_BUFFERS = 8
const LINGER_MIN_BYTES = 4096

/** What the kept last words are bounded by. */
export interface LingeringOptions {
  pingInterval: number
  pingTimeout: number
  maxBufferedBytes: number
  /** True once `drain()` or `close()` has begun: every session ends, none of them a client's doing. */
  closing: () => boolean
}

/** The last words kept for one sid, and its place in the queue of their deadlines. */
class Kept extends Timed {
  constructor(
    readonly sid: string,
    readonly transport: Transport,
    readonly bytes: number,
    readonly params: RouteParams | undefined,
  ) {
    super()
  }
}

/**
 * Closed HTTP transports whose last words (a CLOSE, a MOVED) wait for one more GET of their
 * client, by sid: a client between two GETs learns this way that its session was closed or
 * moved. Kept apart from the server so that what bounds them (time, bytes) and what waits for
 * them at close (see `taken`) live in one place.
 */
export class Lingering {
  readonly #options: LingeringOptions
  readonly #entries = new Map<string, Kept>()
  /**
   * When each is forgotten: pingInterval + pingTimeout after it was kept, one delay for all (see
   * `TimerQueue`). The verdicts wait two turns of the event loop: a GET that came while the
   * server's thread stalled past a deadline is read first, and takes its last words.
   */
  readonly #deadlines: TimerQueue<Kept>
  /** What the entries count, together (see LINGERING_BUFFERS). */
  #bytes = 0
  /** True once the last words kept at close are dropped: nothing is kept for later requests. */
  #forgetting = false
  /**
   * Sids whose CLOSE ('server shutdown', or the drain's 'server handoff') waits for a GET their
   * client is about to send.
   */
  readonly #awaited = new Set<string>()
  /** When the last of those GETs is due at the latest (`performance.now()`). */
  #awaitedUntil = 0
  /** Who waits for those last words to be taken (see `taken`). */
  readonly #waiters = new Set<() => void>()

  constructor(options: LingeringOptions) {
    this.#options = options
    // A client polls again at once, and reads a stream within its ping timeout at the latest.
    this.#deadlines = new TimerQueue(options.pingInterval + options.pingTimeout, (kept) =>
      this.#forget(kept.sid),
    )
  }

  /**
   * Keeps `transport`, closed, for `sid`'s next GET (see `SessionConfig.linger`), with the route
   * parameters its session opened under (see `paramsOf`).
   */
  add(sid: string, transport: Transport, params: RouteParams | undefined): void {
    // A drain leaves CLOSE 'server handoff' for the next GET, a close CLOSE 'server shutdown';
    // once the server stops answering, nothing is kept.
    if (this.#forgetting) return
    this.#forget(sid)
    const { maxBufferedBytes, closing } = this.#options
    const bytes = Math.max(transport.bufferedAmount, LINGER_MIN_BYTES)
    const kept = new Kept(sid, transport, bytes, params)
    this.#deadlines.add(kept)
    this.#entries.set(sid, kept)
    this.#bytes += bytes
    // At close every session ends at once and lingers: as many as there were sessions (at most
    // maxSessions), none of them a client's doing, and each awaited (see `taken`).
    if (!closing()) {
      const limit = LINGERING_BUFFERS * maxBufferedBytes
      for (const oldest of this.#entries.keys()) {
        if (this.#bytes <= limit || oldest === sid) break
        this.#forget(oldest)
      }
    }
    // From the drain on: a session handed off ends in it, its CLOSE 'server handoff' kept for
    // that GET. Without other nodes the drain seals it at once and the node closes: a GET a
    // moment later found no node, and its client resumed without the quiet time that CLOSE gives.
    const due = closing() ? transport.http?.nextGetWithin() : undefined
    if (due !== undefined && due > 0) {
      this.#awaited.add(sid)
      this.#awaitedUntil = Math.max(this.#awaitedUntil, performance.now() + due)
    }
  }

  /** The transport of kind `name` that still holds last words for `sid`, taken out of the store. */
  take(sid: string, name: string): Transport | undefined {
    const entry = this.#entries.get(sid)
    if (!entry || entry.transport.name !== name) return undefined
    this.#forget(sid)
    return entry.transport
  }

  /**
   * The route parameters of the session whose last words are kept for `sid`: a request of it
   * under others is refused as one of the live session was, and leaves those last words to its
   * own client.
   */
  paramsOf(sid: string): RouteParams | undefined {
    return this.#entries.get(sid)?.params
  }

  /** Whether a closed transport of kind `name` still holds last words for `sid`. */
  has(sid: string, name: string): boolean {
    return this.#entries.get(sid)?.transport.name === name
  }

  /**
   * Resolves once every client that was about to send a GET when its session ended at close or
   * in the drain has fetched its last words, or once none of them can be expected any more, and
   * after `limitMs` at the most (see `ParleyServer.lastWordsTaken`).
   */
  taken(limitMs: number): Promise<void> {
    const wait = Math.min(limitMs, this.#awaitedUntil - performance.now())
    if (this.#awaited.size === 0 || wait <= 0) return Promise.resolve()
    return new Promise((resolve) => {
      const done = () => {
        timer.clear()
        this.#waiters.delete(done)
        resolve()
      }
      // Its verdict waits two turns (see `InputFirstTimer`): a GET that came while the server's
      // thread stalled past the wait is read first and takes its CLOSE, where the close, going
      // on at once, would forget it.
      const timer = new InputFirstTimer(wait, done)
      this.#waiters.add(done)
    })
  }

  /** Drops every last word kept, and keeps none from now on: the server no longer answers requests. */
  forgetAll(): void {
    this.#forgetting = true
    for (const kept of this.#entries.values()) kept.leaveQueue()
    this.#entries.clear()
    this.#bytes = 0
    this.#awaited.clear()
    this.#gone()
  }

  #gone(): void {
    for (const done of [...this.#waiters]) done()
  }

  #forget(sid: string): void {
    const entry = this.#entries.get(sid)
    if (!entry) return
    entry.leaveQueue()
    this.#entries.delete(sid)
    this.#bytes -= entry.bytes
    if (this.#awaited.delete(sid) && this.#awaited.size === 0) this.#gone()
  }
}
