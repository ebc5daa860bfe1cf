/** The parameters of a listener type (never for a non-function). */
export type Args<F> = F extends (...args: infer A) => unknown ? A : never

type Entry = { fn: unknown; once: boolean }

/**
 * A tiny typed event emitter. A listener that throws does not stop the others, and cannot
 * break the caller (the transport code that delivered the packet): the error is reported
 * asynchronously, as an uncaught error would be.
 */
export class Emitter<E extends object> {
  #listeners = new Map<keyof E, Entry[]>()

  /** Adds a listener. */
  on<K extends keyof E>(event: K, fn: E[K]): this {
    const list = this.#listeners.get(event)
    if (list) list.push({ fn, once: false })
    else this.#listeners.set(event, [{ fn, once: false }])
    return this
  }

  /** Adds a listener that is removed after its first call. */
  once<K extends keyof E>(event: K, fn: E[K]): this {
    this.on(event, fn)
    const list = this.#listeners.get(event)!
    list[list.length - 1]!.once = true
    return this
  }

  /** Removes one listener, every listener of an event, or every listener. */
  off<K extends keyof E>(event?: K, fn?: E[K]): this {
    if (event === undefined) this.#listeners.clear()
    else if (fn === undefined) this.#listeners.delete(event)
    else {
      const list = this.#listeners.get(event)
      const i = list ? list.findIndex((e) => e.fn === fn) : -1
      if (i >= 0) list!.splice(i, 1)
    }
    return this
  }

  /** Number of listeners of an event. */
  listenerCount(event: keyof E): number {
    return this.#listeners.get(event)?.length ?? 0
  }

  /** Calls the listeners of `event`; returns false when there were none. */
  protected fire<K extends keyof E>(event: K, ...args: Args<E[K]>): boolean {
    const list = this.#listeners.get(event)
    if (!list || list.length === 0) return false
    // Copy: a listener may add or remove listeners while we iterate.
    for (const entry of [...list]) {
      if (entry.once) this.off(event, entry.fn as E[K])
      try {
        ;(entry.fn as (...a: unknown[]) => void)(...args)
      } catch (err) {
        queueMicrotask(() => {
          throw err
        })
      }
    }
    return true
  }
}
