import type { RedisAdapterLog } from './options.js'

/** At most one line per kind of trouble in this many ms: an outage must not flood the log. */
export const WARN_INTERVAL = 10_000

/**
 * Warnings at most once per `WARN_INTERVAL` for each kind; a line says how many times it
 * happened since the last one of its kind (`times`).
 */
export class Warnings {
  readonly #last = new Map<string, { at: number; suppressed: number }>()

  constructor(private readonly log: RedisAdapterLog) {}

  warn(kind: string, message: string, details: Record<string, unknown> = {}): void {
    const now = Date.now()
    const last = this.#last.get(kind)
    if (last && now - last.at < WARN_INTERVAL) {
      last.suppressed++
      return
    }
    const times = (last?.suppressed ?? 0) + 1
    this.#last.set(kind, { at: now, suppressed: 0 })
    try {
      this.log.warn({ ...details, times }, `@parley/redis: ${message}`)
    } catch {
      // A logger that throws must not break delivery.
    }
  }
}
