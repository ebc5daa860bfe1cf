import type { RedisAdapterLog } from './options.js'

/** At most one line per kind of trouble in this many ms: an outage must not flood the log. */
export const WARN_INTERVAL = 10_000

/** The last line of a kind, and what was held back since. */
interface Kind {
  at: number
  suppressed: number
  /** The last warning held back: what `flush` says, with the count. */
  latest?: { message: string; details: Record<string, unknown> }
}

/**
 * Warnings at most once per `WARN_INTERVAL` for each kind; a line says how many times it
 * happened since the last one of its kind (`times`). What is still held back when the adapter
 * closes is said then (`flush`): the end of an outage is not lost with its last counts.
 */
export class Warnings {
  readonly #last = new Map<string, Kind>()

  constructor(private readonly log: RedisAdapterLog) {}

  warn(kind: string, message: string, details: Record<string, unknown> = {}): void {
    const now = Date.now()
    const last = this.#last.get(kind)
    if (last && now - last.at < WARN_INTERVAL) {
      last.suppressed++
      last.latest = { message, details }
      return
    }
    const times = (last?.suppressed ?? 0) + 1
    this.#last.set(kind, { at: now, suppressed: 0 })
    this.#write(message, { ...details, times })
  }

  /** Says, for each kind, the warnings held back since its last line (the latest, with `times`). */
  flush(): void {
    for (const { suppressed, latest } of this.#last.values()) {
      if (suppressed > 0 && latest) this.#write(latest.message, { ...latest.details, times: suppressed })
    }
    this.#last.clear()
  }

  #write(message: string, details: Record<string, unknown>): void {
    try {
      this.log.warn(details, `@parley/redis: ${message}`)
    } catch {
      // A logger that throws must not break delivery.
    }
  }
}
