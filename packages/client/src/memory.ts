import { isTransportName, type TransportName } from '@parley/protocol'

/** The part of the Web Storage API the client uses; `localStorage` fits, so does a Map wrapper. */
export interface StorageLike {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
  removeItem(key: string): void
}

/** What the client calls of a storage: it never removes an item (a stale one lapses). */
type UsedStorage = Pick<StorageLike, 'getItem' | 'setItem'>

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
  getItem: (k) => fallbackStore.get(k) ?? null,
  setItem: (k, v) => void fallbackStore.set(k, v),
}

/**
 * Remembers, per server, the transport that last worked, and the event streams that stalled
 * (opened, then brought nothing: a proxy that buffers them), which the client tries last and
 * never probes. Each has a time of its own: every open refreshes the transport's, while a stall
 * mark lapses FIRST_STALL_TTL after a first stall, so that a slow moment passes, and MEMORY_TTL
 * after a second one within the hour of the first, so that a page that moved to a network where
 * the stream works tries it again. Tabs of the same server share what one of them learned.
 * `stalls` and `note` are names the browser build shortens, which `stalled` (also an error's
 * `details`) and `set` (also the platform's) could not be.
 */
export class TransportMemory {
  readonly #key: string

  readonly #storage: UsedStorage
  readonly #now: () => number

  /** `storage`: the given one, else `localStorage` where it works, else memory. */
  constructor(storage: UsedStorage | undefined, server: string, now: () => number = Date.now) {
    if (!storage) {
      try {
        // Safari's private mode and sandboxed frames throw on use, not on access; where there is
        // no localStorage (Node), the call throws as well.
        const local = (globalThis as { localStorage: StorageLike }).localStorage
        local.getItem('parley')
        storage = local
      } catch {
        storage = mapStorage
      }
    }
    this.#storage = storage
    this.#now = now
    this.#key = `parley:transport:${server}`
  }

  /** The remembered transport, if fresh. Never throws: a broken storage only costs speed. */
  get(): TransportName | undefined {
    const [name, time] = this.#read()
    return this.#fresh(time) && isTransportName(name) ? name : undefined
  }

  /** The transports whose stall mark holds. */
  stalls(): TransportName[] {
    // A stall time is stored after the list: where it is fresh, the list is there (no list: none).
    const [, , list = '', at, first] = this.#read()
    return this.#fresh(at, first) ? list.split(',').filter(isTransportName) : []
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
    if (stall) this.#write(remembered, time, [...others, name], this.#now(), marked.includes(name) ? '' : 1)
    else this.#write(name, this.#now(), others, at, first)
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
    return this.#now() - (time as number) < (first ? FIRST_STALL_TTL : MEMORY_TTL)
  }
}
