import type { RedisAdapterLog } from './options.js'

/** At most one line per kind of trouble in this many ms: an outage must not flood the log. */
export const WARN_INTERVAL = 10_000

/**
 * The most distinct messages of one kind held back at once (see `Warnings`); past it, a message
 * not held yet counts toward the last one held, which then says the latest of them.
 */
export const MAX_HELD_MESSAGES = 10

/** Warnings of one message held back, and the latest details given with it. */
interface Held {
  details: Record<string, unknown>
  times: number
}

/** When a kind last wrote, and what it holds back since. */
interface Kind {
  /** When the kind last wrote (`performance.now()`). */
  at: number
  /** By message, in the order they first came: each is said as itself, with its own count. */
  readonly held: Map<string, Held>
  /** Says what is held once the kind's interval is over (see `#release`). */
  timer?: NodeJS.Timeout
}

/**
 * Warnings at most once per `WARN_INTERVAL` for each kind. What comes within a kind's interval
 * is held back, each message apart with how many times it came (`times`), and said when the
 * interval ends, or when the adapter closes (`close`): a kind gathers several messages (a
 * handoff's write refused, or unanswered), and one of them must neither hide another nor keep it
 * back until the next line of its kind, which may come much later or never. After the close,
 * those of one event-loop turn are said together at its end (see `warn`).
 */
export class Warnings {
  readonly #kinds = new Map<string, Kind>()
  #closed = false
  /** After the close: says what this turn held, at its end (see `warn`). */
  #turnEnd: NodeJS.Immediate | undefined

  constructor(private readonly log: RedisAdapterLog) {}

  warn(kind: string, message: string, details: Record<string, unknown> = {}): void {
    if (this.#closed) {
      // Commands in flight at the close that fail late, perhaps many in one turn (a queue
      // rejected whole): held to the end of the turn, each message once with its count. Not for
      // an interval: the process may exit at any moment, and a timer that does not keep it alive
      // would lose them. The end of the turn does keep it alive.
      // No interval after the close: its `at` is never read.
      const state = this.#kinds.get(kind) ?? { at: 0, held: new Map() }
      this.#kinds.set(kind, state)
      this.#hold(state, message, details)
      this.#turnEnd ??= setImmediate(() => {
        this.#turnEnd = undefined
        this.close()
      })
      return
    }
    // The monotonic clock: a step of the wall clock (NTP) must neither end a kind's interval at
    // once (more lines) nor hold what it held back for as long as the step (its timer's delay).
    const now = performance.now()
    const last = this.#kinds.get(kind)
    // A timer late on a loaded machine: what it holds goes first, in its order.
    if (last && now - last.at >= WARN_INTERVAL) this.#release(kind, last)
    const current = this.#kinds.get(kind)
    if (!current) {
      this.#kinds.set(kind, { at: now, held: new Map() })
      this.#write(message, { ...details, times: 1 })
      return
    }
    this.#hold(current, message, details)
    if (current.timer) return
    current.timer = setTimeout(() => this.#release(kind, current), current.at + WARN_INTERVAL - now)
    // It must not hold the process open: `close` says the rest when the adapter closes.
    current.timer.unref()
  }

  /**
   * Says now what `kind` holds back, rather than at the end of its interval: a line that ends a
   * trouble (the connection is back) must come after the lines of that trouble, not before.
   */
  flush(kind: string): void {
    const state = this.#kinds.get(kind)
    if (state && state.held.size > 0) this.#release(kind, state)
  }

  /**
   * The adapter closes: says, for each kind, the warnings held back since its last line (each
   * message, with `times`), and from now on those of a turn at its end, with no interval.
   */
  close(): void {
    this.#closed = true
    for (const [kind, state] of [...this.#kinds]) this.#release(kind, state)
    this.#kinds.clear()
  }

  #hold(kind: Kind, message: string, details: Record<string, unknown>): void {
    const same = kind.held.get(message)
    if (same) {
      same.times++
      same.details = details
      return
    }
    if (kind.held.size < MAX_HELD_MESSAGES) {
      kind.held.set(message, { details, times: 1 })
      return
    }
    // Full: the last one held stands for the rest, and says the latest of them.
    const [lastMessage, lastHeld] = [...kind.held].at(-1) ?? []
    if (lastMessage === undefined || !lastHeld) return
    kind.held.delete(lastMessage)
    kind.held.set(message, { details, times: lastHeld.times + 1 })
  }

  /**
   * The kind's interval is over: says what it held, each message once with its count. Something
   * said opens a new interval (the next warning is held again); nothing held ends the kind's
   * state, and the next warning is written at once.
   */
  #release(kind: string, state: Kind): void {
    clearTimeout(state.timer)
    state.timer = undefined
    if (this.#kinds.get(kind) === state) this.#kinds.delete(kind)
    if (state.held.size === 0) return
    for (const [message, { details, times }] of state.held) this.#write(message, { ...details, times })
    this.#kinds.set(kind, { at: performance.now(), held: new Map() })
  }

  #write(message: string, details: Record<string, unknown>): void {
    try {
      this.log.warn(details, `@parley/redis: ${message}`)
    } catch {
      // A logger that throws must not break delivery.
    }
  }
}
