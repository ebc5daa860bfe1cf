import { argumentError } from './argument-error.js'
import { shown } from './thrown.js'

/** A number as itself, anything else by its type: a string '10' must not read as the number. */
const described = (value: unknown): string => (typeof value === 'number' ? shown(value) : typeof value)

/**
 * Keys remembered for a while, a bounded number of them: each stands for `lifetime` ms from its
 * last `add`, and past `max` the oldest are forgotten. For what a node learns of its peers and
 * asks no one again meanwhile: the server's owners that could not be reached lately, the nodes
 * `@parley/redis` found without an address record. Exported for adapters, which remember such
 * answers too. One lifetime for all keys, so insertion order is expiry order: an `add` drops the
 * expired and the surplus from the front and stops at the first that stands, never walking the
 * rest. Lifetimes are measured on the monotonic clock (`performance.now()`), as every timer is:
 * a step of the wall clock (NTP, an operator) neither forgets a key early nor keeps it longer.
 */
export class ExpiringSet {
  /** When each key stops standing (`performance.now()`), oldest first. */
  readonly #until = new Map<string, number>()

  /**
   * Throws a `RangeError` coded `PARLEY_INVALID_ARGUMENT` for a `lifetime` that is not a number
   * of ms (0 or more, `Infinity` for ever) or a `max` that is not a whole number from 1: kept,
   * either would make a set that silently remembers nothing.
   */
  constructor(
    /** How long a key stands after its last `add` (ms). */
    readonly lifetime: number,
    /** The most keys kept: past it, the oldest go. */
    readonly max: number,
  ) {
    if (typeof lifetime !== 'number' || !(lifetime >= 0)) {
      throw argumentError(
        `an ExpiringSet's lifetime is a number of ms, 0 or more, not ${described(lifetime)}`,
        {
          range: true,
        },
      )
    }
    if (!Number.isSafeInteger(max) || max < 1) {
      throw argumentError(`an ExpiringSet's max is a whole number from 1, not ${described(max)}`, {
        range: true,
      })
    }
  }

  /** Remembers `key` for `lifetime` ms from now (again, when it was there already). */
  add(key: string): void {
    const now = performance.now()
    this.#until.delete(key)
    this.#until.set(key, now + this.lifetime)
    for (const [oldest, until] of this.#until) {
      if (until > now && this.#until.size <= this.max) break
      this.#until.delete(oldest)
    }
  }

  /** True while `key` was added less than `lifetime` ms ago (and not forgotten since). */
  has(key: string): boolean {
    const until = this.#until.get(key)
    if (until === undefined) return false
    if (performance.now() < until) return true
    this.#until.delete(key)
    return false
  }

  /** Forgets `key`: what it stood for is known to be over. */
  delete(key: string): void {
    this.#until.delete(key)
  }

  /** How many keys are kept, some of them possibly expired and not dropped yet. */
  get size(): number {
    return this.#until.size
  }
}
