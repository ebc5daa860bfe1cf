import type { FastifyBaseLogger } from 'fastify'
import { loggable, standIn } from './thrown.js'

/**
 * The levels a burst is logged at: info and warn for something the server handled, error for a
 * failure that its clients met (a middleware's or an adapter's).
 */
export type BurstLevel = 'info' | 'warn' | 'error'

/**
 * How many event names a line lists at most (see `BurstLog.record`): a client may choose them,
 * and a line must stay one line however many it makes up.
 */
export const MAX_LISTED_EVENTS = 10

/**
 * One kind of log line for something that is normal now and then but comes in bursts: a deploy,
 * a restart or a network blip brings it to many sessions at once, and one line per session
 * would be 10 000 lines for 10 000 sessions. So the first is logged at once, then one line per
 * `everyMs` with how many came since (`count`, and `total` since the server started), while
 * they keep coming; `close` logs what is left, and those that come after it at the end of the
 * event-loop turn they came in (see `record`). No count is lost, and a quiet server keeps no
 * timer. A line carries the details of the first of those it counts, as an example (and its
 * message may name them), and the names of the events they concern, when they concern events
 * (`events`, at most `MAX_LISTED_EVENTS`; `moreEvents` when there were more).
 */
export class BurstLog<Example extends Record<string, unknown> = Record<string, unknown>> {
  readonly #log: FastifyBaseLogger
  readonly #level: BurstLevel
  readonly #message: (count: number, example: Example | undefined) => string
  readonly #everyMs: number
  #total = 0
  #sinceLine = 0
  #example: Example | undefined
  /** The events named since the last line; undefined when none was. */
  #events: Set<string> | undefined
  #moreEvents = false
  /** Before the close, the wait of `everyMs`; after it, the end of the turn (see `record`). */
  #timer: NodeJS.Timeout | NodeJS.Immediate | undefined
  #closed = false

  /** `message` says what `count` of them since the last line (the first: `example`) mean, and what to do. */
  constructor(
    log: FastifyBaseLogger,
    level: BurstLevel,
    message: (count: number, example: Example | undefined) => string,
    everyMs = 10_000,
  ) {
    this.#log = log
    this.#level = level
    this.#message = message
    this.#everyMs = everyMs
  }

  /**
   * Counts one, about `event` when given; logs it at once unless a line was written within
   * `everyMs`. After `close`, those of one event-loop turn are logged together at its end: held
   * for `everyMs`, they would wait on a timer that does not keep the process alive, and be lost
   * when it exits; and one line each would flood the log when many come at once (the
   * `disconnect` listeners of every session the close ended, rejecting after it, say).
   */
  record(example?: Example, event?: string): void {
    this.#total++
    if (this.#sinceLine++ === 0) this.#example = example
    if (event !== undefined) this.#name(event)
    if (this.#timer !== undefined) return
    // Kept alive for the rest of the turn: the process does not exit before the line.
    if (this.#closed) this.#timer = setImmediate(() => this.#flush())
    else this.#flush()
  }

  /** The server closes: logs what was not logged yet, and keeps no timer. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    // Not closed yet: the timer is the wait of everyMs, never the end of a turn.
    clearTimeout(this.#timer as NodeJS.Timeout | undefined)
    this.#timer = undefined
    if (this.#sinceLine > 0) this.#line()
  }

  /**
   * Logs what came since the last line, and (before the close) waits `everyMs` for more; stops
   * when none came.
   */
  #flush(): void {
    this.#timer = undefined
    if (this.#sinceLine === 0) return
    this.#line()
    if (this.#closed) return
    this.#timer = setTimeout(() => this.#flush(), this.#everyMs)
    // A server that closes without `close` (a test, a crash) must not be held open by it.
    this.#timer.unref()
  }

  #name(event: string): void {
    this.#events ??= new Set()
    if (this.#events.size < MAX_LISTED_EVENTS) this.#events.add(event)
    else if (!this.#events.has(event)) this.#moreEvents = true
  }

  #line(): void {
    const count = this.#sinceLine
    const example = this.#example
    const events = this.#events && {
      events: [...this.#events],
      ...(this.#moreEvents && { moreEvents: true }),
    }
    this.#sinceLine = 0
    this.#example = undefined
    this.#events = undefined
    this.#moreEvents = false
    logLine(
      this.#log,
      this.#level,
      { ...example, ...events, count, total: this.#total },
      `parley: ${this.#message(count, example)}`,
    )
  }
}

/**
 * Writes one line whose `err` is what the application threw, a symbol or undefined as text (see
 * `loggable`): a line that has the key has something thrown to show. The logger's serializer may
 * throw on it (pino marks each error it walks, and a frozen error cannot be marked; a getter or a
 * Proxy's trap may throw): the line then goes with a stand-in for `err` (see `standIn`), never
 * throwing from the server's code, where it may run in a timer.
 */
export function logLine(
  log: FastifyBaseLogger,
  level: BurstLevel | 'debug',
  fields: { err?: unknown } & Record<string, unknown>,
  message: string,
): void {
  if ('err' in fields) fields = { ...fields, err: loggable(fields.err) }
  try {
    log[level](fields, message)
  } catch {
    log[level]({ ...fields, err: standIn(fields.err) }, message)
  }
}
