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

/** Remembers, per server, the transport that last worked. */
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
    try {
      const [name, at] = (this.#storage.getItem(this.#key) ?? '').split('|')
      return isTransportName(name) && this.#now() - Number(at) < MEMORY_TTL ? name : undefined
    } catch {
      return undefined
    }
  }

  set(name: TransportName): void {
    try {
      this.#storage.setItem(this.#key, `${name}|${this.#now()}`)
    } catch {}
  }
}
