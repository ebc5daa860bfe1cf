/** A listener of any event; the event maps give it a precise type at the API surface. */
export type Listener = (...args: never[]) => unknown

/**
 * A small listener registry. Unlike Node's EventEmitter it has no special 'error' event, so
 * that the socket can catch what each listener throws. Lists are copied on change, never
 * mutated, so that `get` can hand out the current list without a copy per event.
 */
export class Listeners {
  readonly #map = new Map<string, readonly Listener[]>()

  add(event: string, listener: Listener, once = false): void {
    const list = this.#map.get(event) ?? NONE
    // `concat` makes an array of the exact length; a spread literal reserves room to grow
    // (about 130 bytes more per list, kept for the socket's life).
    this.#map.set(event, list.concat(once ? onceWrapper(this, event, listener) : listener))
  }

  remove(event?: string, listener?: Listener): void {
    if (event === undefined) {
      this.#map.clear()
      return
    }
    if (listener === undefined) {
      this.#map.delete(event)
      return
    }
    const list = this.#map.get(event)
    if (!list) return
    const index = list.findIndex((l) => l === listener || (l as OnceListener).original === listener)
    if (index < 0) return
    if (list.length === 1) this.#map.delete(event)
    else
      this.#map.set(
        event,
        list.filter((_, i) => i !== index),
      )
  }

  /** The listeners now; listeners added or removed during a call do not change this list. */
  get(event: string): readonly Listener[] {
    return this.#map.get(event) ?? NONE
  }

  count(event: string): number {
    return this.#map.get(event)?.length ?? 0
  }
}

const NONE: readonly Listener[] = []

interface OnceListener extends Listener {
  original: Listener
}

function onceWrapper(owner: Listeners, event: string, listener: Listener): Listener {
  const wrapper = ((...args: never[]) => {
    owner.remove(event, wrapper)
    return listener(...args)
  }) as OnceListener
  wrapper.original = listener
  return wrapper
}
