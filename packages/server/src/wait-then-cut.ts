/**
 * Things that are ending on their own (a closing handshake, a request finishing) which the HTTP
 * server's close would wait for: at shutdown they are given a moment (`closeAll`), then cut.
 */
export class WaitThenCut<T> {
  readonly #ending = new Set<T>()
  readonly #cut: (item: T) => void
  /** Resolves the wait of `closeAll` once the last one is over. */
  #allOver: (() => void) | undefined

  /** `cut`: ends an item at once, when `closeAll`'s moment is over. */
  constructor(cut: (item: T) => void) {
    this.#cut = cut
  }

  has(item: T): boolean {
    return this.#ending.has(item)
  }

  /** `item` is ending: call `over` once it is. */
  add(item: T): void {
    this.#ending.add(item)
  }

  /** `item` is over: `closeAll` no longer waits for it. */
  over(item: T): void {
    if (this.#ending.delete(item) && this.#ending.size === 0) this.#allOver?.()
  }

  /** Waits for every item still ending, `limitMs` at the most, then cuts those still going. */
  async closeAll(limitMs: number): Promise<void> {
    if (this.#ending.size > 0 && limitMs > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, limitMs)
        this.#allOver = () => {
          clearTimeout(timer)
          resolve()
        }
      })
      this.#allOver = undefined
    }
    for (const item of this.#ending) this.#cut(item)
    this.#ending.clear()
  }
}
