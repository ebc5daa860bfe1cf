import { MAX_TIMER_MS } from '@parley/protocol'
import { argsNow, type MadeArgs } from './made-args.js'
import type { RedisClient } from './options.js'
import { settleable } from './send.js'

/**
 * The most places undos take at once while they cannot be sent: past it, the oldest is given up.
 * Those of one session that share a place (see `Undos.add`) take one.
 */
export const MAX_KEPT_UNDOS = 1000

/** Why an undo past its time is given up. */
const EXPIRED = 'what it would take back has expired meanwhile'

/** How often `settle` looks whether the connection is back. */
const SETTLE_POLL_MS = 25

/** One command that takes back another, until Redis answered it. */
interface Undo {
  /** Made again at each try when made as it goes (see `MadeArgs`): given up when it has nothing left to do. */
  readonly args: MadeArgs
  /**
   * Given up past this time (`performance.now()`): what it would take back has expired by then.
   * The monotonic clock, as the PX of a record made as it goes (see `EndedRecords`): a step of
   * the wall clock (NTP) must neither give up early a step whose record still has time left, nor
   * keep one past it.
   */
  readonly until: number
  /** On the connection now, its answer awaited. */
  sending: boolean
  /** Told what Redis answered it, once it did. */
  readonly answered: ((reply: unknown) => void) | undefined
  /** Resolves what `add` returned: answered, or given up. */
  readonly done: () => void
  /** The place it shares with the other undos given it (see `Undos.add`), if any. */
  readonly place: string | undefined
}

/**
 * The commands that take back a command whose answer never came (given up on, or lost with its
 * connection), for it may have run, and those that take back a stored handoff whose session
 * ended while Redis was away (see `HandOffStore.withdraw`). An undo must run after the command
 * it takes back: it goes on the same connection right behind it while Redis is connected;
 * while not, it waits, and goes first once the connection is back, before any other command of
 * the adapter: as soon as node-redis says the connection is ready again, and before any other
 * command in any case (`Commands.send` calls `flush`). node-redis keeps a command it had not written yet
 * for the next connection, ahead of anything sent later, so the order holds either way. A
 * connection that drops before Redis answers the undo leaves it unknown whether it ran: it goes
 * again on the next one (an undo that runs twice does nothing the second time). Kept until Redis
 * answers it, for at most its `keepMs`, and at most `MAX_KEPT_UNDOS` at once. One that waits
 * past its time is given up then, by a timer, not only at the adapter's next command: what `add`
 * returned settles at that time, and whoever waits on it goes on.
 */
export class Undos {
  /** Oldest first. */
  readonly #kept = new Set<Undo>()
  /** How many of `#kept` share each place (see `add`). */
  readonly #shared = new Map<string, number>()
  /** The places `#kept` takes: one for each undo without a place, one for each place shared. */
  #places = 0
  /** Gives up the waiting undos whose time has come: one for the whole set, at the earliest. */
  #expiry: NodeJS.Timeout | undefined
  #stopped = false

  constructor(
    private readonly client: RedisClient,
    /** Sends on the client, counted among the unanswered commands (see `Commands`). */
    private readonly send: (args: string[]) => Promise<unknown>,
    /** An undo was given up: expired, pushed out by newer ones, or refused by Redis. */
    private readonly givenUp: (why: string, err?: unknown) => void,
  ) {
    // Not only before the adapter's next command: a node that sends none for a while (its
    // heartbeat may be a minute away) would leave a withdrawn snapshot claimable meanwhile.
    client.on?.('ready', this.#flushWhenReady)
  }

  /**
   * Sent from node-redis' 'ready' listener: the adapter sends nothing while the connection is
   * down, so these are ahead of any other command of the adapter on the new connection.
   */
  readonly #flushWhenReady = (): void => this.flush()

  /**
   * Stops listening to the client (it is the application's, and outlives the adapter). The undos
   * still waiting are given up (nothing sends them any more: the adapter reports how many, see
   * `settle`); one on the connection settles when Redis answers it.
   */
  stop(): void {
    this.#stopped = true
    this.client.off?.('ready', this.#flushWhenReady)
    clearTimeout(this.#expiry)
    this.#expiry = undefined
    for (const undo of this.#kept) if (!undo.sending) this.#drop(undo)
  }

  /**
   * Keeps `args` until Redis answers it (told to `answered`), and sends it now when connected.
   * Resolves once Redis answered it (after `answered`), or once it is given up. Undos given one
   * `place` (a session's: the record of how it ended and the withdrawal of its snapshot behind
   * it) take one of the `MAX_KEPT_UNDOS` places between them, and are given up together when
   * theirs is the oldest one pushed out: never the withdrawal without the record it follows.
   */
  add(args: MadeArgs, keepMs: number, answered?: (reply: unknown) => void, place?: string): Promise<void> {
    this.#prune()
    const joins = place !== undefined && this.#shared.has(place)
    if (!joins && this.#places >= MAX_KEPT_UNDOS) {
      const oldest = this.#kept.values().next().value
      if (oldest) this.#dropPlace(oldest)
      this.givenUp(`more than ${MAX_KEPT_UNDOS} waited for Redis`)
    }
    const { promise: settled, resolve: done } = settleable()
    const undo: Undo = { args, until: performance.now() + keepMs, sending: false, answered, done, place }
    this.#keep(undo)
    if (this.client.isReady) this.#send(undo)
    else this.#arm()
    return settled
  }

  /**
   * Waits, at most `ms`, for every kept undo to be answered or given up, sending those that wait
   * whenever the connection is back: an adapter that closes would otherwise drop them, and leave
   * what they take back (a snapshot a client could still claim) until it expires. Resolves with
   * how many are left.
   */
  async settle(ms: number): Promise<number> {
    const end = performance.now() + ms
    for (;;) {
      this.#prune()
      this.flush()
      const left = end - performance.now()
      if (this.#kept.size === 0 || left <= 0) return this.#kept.size
      await new Promise((resolve) => setTimeout(resolve, Math.min(SETTLE_POLL_MS, left)))
    }
  }

  /** Sends the undos that wait (the connection is back), oldest first: call before any other command. */
  flush(): void {
    if (this.#kept.size === 0 || !this.client.isReady) return
    this.#prune()
    for (const undo of this.#kept) if (!undo.sending) this.#send(undo)
  }

  #send(undo: Undo): void {
    const args = argsNow(undo.args)
    if (args === undefined) {
      this.#drop(undo)
      this.givenUp(EXPIRED)
      return
    }
    undo.sending = true
    this.send(args).then(
      (reply) => {
        this.#forget(undo)
        undo.answered?.(reply)
        undo.done()
      },
      (err: unknown) => {
        // Not connected: the connection dropped first (node-redis says so before it
        // reconnects), and the undo may or may not have run: it goes again. Still connected:
        // Redis answered with an error, as it may to any command; given up, as those are.
        if (!this.client.isReady) {
          undo.sending = false
          this.#arm()
          return
        }
        this.#drop(undo)
        this.givenUp('Redis refused it', err)
      },
    )
  }

  #prune(): void {
    const now = performance.now()
    for (const undo of this.#kept) {
      if (undo.until > now || undo.sending) continue
      this.#drop(undo)
      this.givenUp(EXPIRED)
    }
  }

  /**
   * Sets the expiry timer for the earliest time among the undos that wait (one on the connection
   * waits for its answer instead, and is looked at again should its connection drop). Unref'd:
   * it must not hold the process open, which the application closes as it sees fit.
   */
  #arm(): void {
    if (this.#stopped) return
    clearTimeout(this.#expiry)
    this.#expiry = undefined
    let earliest = Number.POSITIVE_INFINITY
    for (const undo of this.#kept) if (!undo.sending && undo.until < earliest) earliest = undo.until
    if (earliest === Number.POSITIVE_INFINITY) return
    this.#expiry = setTimeout(
      () => {
        this.#expiry = undefined
        this.#prune()
        this.#arm()
      },
      Math.min(Math.max(0, earliest - performance.now()), MAX_TIMER_MS),
    )
    this.#expiry.unref()
  }

  /** Gives `undo` up: it is not sent (again). */
  #drop(undo: Undo): void {
    this.#forget(undo)
    undo.done()
  }

  /** Gives up `oldest` and every undo that shares its place. */
  #dropPlace(oldest: Undo): void {
    for (const undo of this.#kept)
      if (undo === oldest || (undo.place !== undefined && undo.place === oldest.place)) this.#drop(undo)
  }

  #keep(undo: Undo): void {
    this.#kept.add(undo)
    const { place } = undo
    const sharing = place === undefined ? 0 : (this.#shared.get(place) ?? 0)
    if (sharing === 0) this.#places++
    if (place !== undefined) this.#shared.set(place, sharing + 1)
  }

  /** Takes `undo` out of `#kept` (answered, or given up), and frees its place once no other holds it. */
  #forget(undo: Undo): void {
    if (!this.#kept.delete(undo)) return
    const { place } = undo
    const sharing = place === undefined ? 1 : (this.#shared.get(place) ?? 1)
    if (sharing === 1) this.#places--
    if (place === undefined) return
    if (sharing === 1) this.#shared.delete(place)
    else this.#shared.set(place, sharing - 1)
  }
}
