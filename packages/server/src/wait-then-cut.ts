/**
 * Things that are ending on their own (a closing handshake, a request finishing) which the HTTP
 * server's close would wait for: at shutdown they are given a moment (`closeAll`), then cut.
 * Some can only begin to end once something else is over (a lookup of where their session
 * lives): `closeAll` waits for that first (`after`).
 */
export class WaitThenCut<T> {
  readonly #ending = new Set<T>()
  readonly #cut: (item: T) => void
  /** What `closeAll` waits for before its moment begins, each within its own bound. */
  readonly #first = new Set<Promise<void>>()
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

  /**
   * An item can end only once `first` has settled: `closeAll` waits for it, `limitMs` at the most
   * (its own bound: an adapter's call that never settles holds no close), before its moment.
   */
  after(first: Promise<unknown>, limitMs: number): void {
    const settled = settledWithin(first, limitMs)
    this.#first.add(settled)
    void settled.then(() => this.#first.delete(settled))
  }

  /** `item` is over: `closeAll` no longer waits for it. */
  over(item: T): void {
    if (this.#ending.delete(item) && this.#ending.size === 0) this.#allOver?.()
  }

  /**
   * Waits for what the items wait for (`after`), then for every item still ending, `limitMs` at
   * the most, then cuts those still going; all of it within `roomMs`, the time the close has left.
   * The time the first wait took is read on the monotonic clock, as its timer runs: a step of the
   * wall clock must neither leave the moment nothing nor stretch it past `roomMs`.
   */
  async closeAll(limitMs: number, roomMs = limitMs): Promise<void> {
    const start = performance.now()
    if (this.#first.size > 0) await settledWithin(Promise.all(this.#first), roomMs)
    const moment = Math.min(limitMs, roomMs - (performance.now() - start))
    if (this.#ending.size > 0 && moment > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, moment)
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

/** Node's longest timer: a longer one would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * Resolves once `promise` has settled, either way, or `ms` have passed (never, for an infinite
 * `ms`): what it settles with is its owner's to handle.
 */
async function settledWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  const settled = promise.then(
    () => {},
    () => {},
  )
  if (!Number.isFinite(ms)) return settled
  let timer: NodeJS.Timeout | undefined
  await Promise.race([
    settled,
    new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.min(Math.max(0, ms), MAX_TIMER_MS)))),
  ])
  clearTimeout(timer)
}
