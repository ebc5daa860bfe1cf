import { type Added, type Draft, MemoryStore, StoreUnavailableError } from '../src/store.js'

/**
 * A `MemoryStore` that refuses each of the given texts once, as a store on Redis does while Redis
 * is away (`StoreUnavailableError`), and takes everything else: Redis coming back between two
 * messages, a moment that a real Redis cannot be made to hit on cue.
 */
export class RefusingStore extends MemoryStore {
  readonly #refuse: Set<string>

  constructor(refuse: Iterable<string>) {
    super()
    this.#refuse = new Set(refuse)
  }

  override add(draft: Draft, key?: string): Promise<Added> {
    if (this.#refuse.delete(draft.text)) return Promise.reject(new StoreUnavailableError('away'))
    return super.add(draft, key)
  }
}
