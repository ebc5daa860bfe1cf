import { misuse, named } from './options.js'

type Entry = { fn: unknown; once: boolean }

/**
 * A tiny typed event emitter. A listener that throws does not stop the others, and cannot
 * break the caller (the transport code that delivered the packet): the error is reported
 * asynchronously, as an uncaught error would be.
 *
 * Lists are copied on change, never in place: a call goes over the list as it was when the event
 * fired (a listener may add or remove listeners meanwhile), and firing, which happens once per
 * message, copies nothing.
 */
export class Emitter<E extends object> {
  #listeners = new Map<keyof E, Entry[]>()

  /** Adds a listener. */
  on<K extends keyof E>(event: K, fn: E[K]): this {
    return this.#add(event, { fn, once: false })
  }

  /** Adds a listener that is removed after its first call. */
  once<K extends keyof E>(event: K, fn: E[K]): this {
    return this.#add(event, { fn, once: true })
  }

  /** Removes one listener, every listener of an event, or every listener. */
  off<K extends keyof E>(event?: K, fn?: E[K]): this {
    if (event === undefined) this.#listeners.clear()
    else if (fn === undefined) this.#listeners.delete(event)
    else {
      listener(event, fn)
      // Its first registration.
      this.#remove(
        event,
        this.#listeners.get(event)?.find((e) => e.fn === fn),
      )
    }
    return this
  }

  /** Number of listeners of an event. */
  listenerCount(event: keyof E): number {
    return this.#listeners.get(event)?.length ?? 0
  }

  /**
   * Calls the listeners of `event` with `args`; returns false when there were none. An array,
   * not a rest parameter: events from the wire arrive with theirs. `failed`, if given, hears of
   * each listener that throws or whose promise rejects (the error is reported all the same).
   */
  protected fire(event: keyof E, args: readonly unknown[], failed?: (err: unknown) => void): boolean {
    const list = this.#listeners.get(event)
    // No empty lists are kept (see #remove).
    if (!list) return false
    for (const entry of list) {
      // This registration itself: the same function may also be there with `on`.
      if (entry.once) this.#remove(event, entry)
      try {
        const result: unknown = (entry.fn as (...a: unknown[]) => unknown)(...args)
        // Still unhandled after `failed` heard it, as it would have been.
        if (failed && result instanceof Promise)
          result.catch((err: unknown) => {
            failed(err)
            throw err
          })
      } catch (err) {
        queueMicrotask(() => {
          throw err
        })
        failed?.(err)
      }
    }
    return true
  }

  /**
   * Removes one registration, `entry` itself: each is an object of its own (see `on`, `once`),
   * so that of the same function registered twice, one registration goes. None (undefined): every
   * entry stays, in a copy. An event left without listeners leaves the table: one-off names
   * (`once('result:42')`) would otherwise each keep an entry for the socket's whole life.
   */
  #remove(event: keyof E, entry: Entry | undefined): void {
    const rest = (this.#listeners.get(event) ?? []).filter((e) => e !== entry)
    if (rest.length > 0) this.#listeners.set(event, rest)
    else this.#listeners.delete(event)
  }

  #add(event: keyof E, entry: Entry): this {
    listener(event, entry.fn)
    this.#listeners.set(event, [...(this.#listeners.get(event) ?? []), entry])
    return this
  }
}

/**
 * A listener must be a function: anything else would throw only once its event came, far from
 * the mistake (in the transport's code, uncaught). Throws a TypeError (PARLEY_INVALID_ARGUMENT)
 * naming the event.
 */
function listener(event: PropertyKey, fn: unknown): void {
  if (typeof fn !== 'function') throw misuse(`listener of ${named(event)} is not a function`)
}
