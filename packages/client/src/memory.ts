import { isTransportName, type TransportName } from '@parley/protocol'

/** The part of the Web Storage API the client uses; `localStorage` fits, so does a Map wrapper. */
export interface StorageLike {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
  removeItem(key: string): void
}

/**
 * What the client calls of a storage: it never removes an item (a stale one lapses). A missing
 * item may come back `undefined` (the in-memory storage's, as its Map gives it), read as `null` is.
 */
type UsedStorage = {
  getItem(key: string): string | null | undefined
  setItem(key: string, value: string): void
}

/** How long a remembered transport is trusted: networks change (a laptop leaves the office). */
export const MEMORY_TTL = 60 * 60 * 1000
/**
 * How long the mark of a stream's first stall holds: a slow moment (a loaded machine, a slow
 * network) looks the same as a buffering proxy, and passes. A second stall within MEMORY_TTL of
 * the first marks the stream for MEMORY_TTL.
 */
export const FIRST_STALL_TTL = 60 * 1000

// Process-wide in Node, so that a second client of the same server starts where the first ended.
const fallbackStore = new Map<string, string>()
const mapStorage: UsedStorage = {
  getItem: (k) => fallbackStore.get(k),
  setItem: (k, v) => void fallbackStore.set(k, v),
}

/**
 * Remembers, per server, the transport that last worked, and the event streams that stalled
 * (opened, then brought nothing: a proxy that buffers them), which the client tries last and
 * never probes. Each has a time of its own: every open refreshes the transport's, while a stall
 * mark lapses FIRST_STALL_TTL after a first stall, so that a slow moment passes, and MEMORY_TTL
 * after a second one within the hour of the first, so that a page that moved to a network where
 * the stream works tries it again. Tabs of the same server share what one of them learned.
 * `recall` and `note` are names the browser build shortens, which `get` and `set` (also the
 * platform's) could not be. Its clock is `Date.now()` (a test stubs it), with no parameter of the
 * class's for it: the bundle carries every parameter, and no caller but a test would pass one.
 */
export class TransportMemory {
  readonly #key: string

  readonly #storage: UsedStorage

  /** `storage`: the given one, else `localStorage` where it works, else memory. */
  constructor(storage: UsedStorage | undefined, server: string) {
    if (!storage) {
      try {
        // Safari's private mode and sandboxed frames throw on use, not on access; where there is
        // no localStorage (Node), the call throws as well, and the catch puts memory in its place.
        // biome-ignore lint/suspicious/noAssignInExpressions: with a local and two statements, the bundle takes 3 and 4 bytes more.
        ;(storage = (globalThis as { localStorage: StorageLike }).localStorage).getItem('parley')
      } catch {
        storage = mapStorage
      }
    }
    this.#storage = storage
    this.#key = `parley:transport:${server}`
  }

  /**
   * The remembered transport, if fresh, and the transports whose stall mark holds. Never throws:
   * a broken storage only costs speed.
   */
  recall(): [remembered: TransportName | undefined, stalled: TransportName[]] {
    // A stall time is stored after the list: where it is fresh, the list is there (no list: none).
    const [name, time, list = '', at, first] = this.#read()
    return [
      this.#fresh(time) && isTransportName(name) ? name : undefined,
      this.#fresh(at, first) ? list.split(',').filter(isTransportName) : [],
    ]
  }

  /**
   * Remembers the transport that opened, which has not stalled (the stall marks of others keep
   * their time); or, with `stall`, marks a stream that stalled (the transport remembered stays,
   * with its time): for FIRST_STALL_TTL, or MEMORY_TTL when it stalled within the hour before.
   */
  note(name: TransportName, stall?: boolean): void {
    const [remembered, time, list = '', at, first] = this.#read()
    // Marked within the hour, first marks that lapsed included: they still count for the next.
    const marked = this.#fresh(at) ? list.split(',').filter(isTransportName) : []
    const others = marked.filter((s) => s !== name)
    if (stall) this.#write(remembered, time, [...others, name], Date.now(), marked.includes(name) ? '' : 1)
    else this.#write(name, Date.now(), others, at, first)
  }

  /**
   * `name|time|stalled,...|time of the stall|1 after a first stall`; a value from an older
   * client has fewer parts (without the last, its stall mark holds for MEMORY_TTL, as it did
   * there).
   */
  #read(): string[] {
    try {
      return (this.#storage.getItem(this.#key) ?? '').split('|')
    } catch {
      return []
    }
  }

  #write(...parts: unknown[]): void {
    try {
      this.#storage.setItem(this.#key, parts.join('|'))
    } catch {}
  }

  /**
   * `time` as stored, within MEMORY_TTL, or FIRST_STALL_TTL for the mark of a `first` stall: `-`
   * reads it as `Number()` would, and a part that is missing (a value an older client wrote)
   * gives NaN, which is never fresh.
   */
  #fresh(time: unknown, first?: string): boolean {
    return Date.now() - (time as number) < (first ? FIRST_STALL_TTL : MEMORY_TTL)
  }
}
