import { isTransportName, type TransportName } from '@parley/protocol'

/** The part of the Web Storage API the client uses; `localStorage` fits, so does a Map wrapper. */
export interface StorageLike {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
  removeItem(key: string): void
}

/** How long a remembered transport is trusted: networks change (a laptop leaves the office). */
export const MEMORY_TTL = 60 * 60 * 1000

// Process-wide in Node, so that a second client of the same server starts where the first ended.
const fallbackStore = new Map<string, string>()
const mapStorage: StorageLike = {
  getItem: (k) => fallbackStore.get(k) ?? null,
  setItem: (k, v) => void fallbackStore.set(k, v),
  removeItem: (k) => void fallbackStore.delete(k),
}

/** The storage to use: the given one, else `localStorage` where it works, else memory. */
export function pickStorage(given?: StorageLike): StorageLike {
  if (given) return given
  try {
    // Safari's private mode and sandboxed frames throw on use, not on access; where there is no
    // localStorage (Node), the call throws as well.
    const local = (globalThis as { localStorage: StorageLike }).localStorage
    local.getItem('parley')
    return local
  } catch {}
  return mapStorage
}

/**
 * Remembers, per server, the transport that last worked, and the event streams that stalled
 * (opened, then brought nothing: a proxy that buffers them), which the client tries last and
 * never probes.
 */
export class TransportMemory {
  readonly #key: string

  readonly #storage: StorageLike
  readonly #now: () => number

  constructor(storage: StorageLike, server: string, now: () => number = Date.now) {
    this.#storage = storage
    this.#now = now
    this.#key = `parley:transport:${server}`
  }

  /** The remembered transport, if fresh. Never throws: a broken storage only costs speed. */
  get(): TransportName | undefined {
    const name = this.#read()[0]
    return isTransportName(name) ? name : undefined
  }

  /** The transports that stalled, as of the remembered one; none once that is stale. */
  stalled(): TransportName[] {
    return (this.#read()[2] ?? '').split(',').filter(isTransportName)
  }

  set(name: TransportName, stalled: Iterable<TransportName>): void {
    try {
      this.#storage.setItem(this.#key, `${name}|${this.#now()}|${[...stalled]}`)
    } catch {}
  }

  /** `name|time|stalled,...` when fresh, else nothing (a value from an older client has no third part). */
  #read(): string[] {
    try {
      const fields = (this.#storage.getItem(this.#key) ?? '').split('|')
      if (this.#now() - Number(fields[1]) < MEMORY_TTL) return fields
    } catch {}
    return []
  }
}
