/** A listener of any event; the event maps give it a precise type at the API surface. */
export type Listener = (...args: never[]) => unknown

/**
 * A small listener registry. Unlike Node's EventEmitter it has no special 'error' event and
 * hands every call to `invoke`, so that the socket can catch what each listener throws.
 */
export class Listeners {
  readonly #map = new Map<string, Listener[]>()

  add(event: string, listener: Listener, once = false): void {
    const list = this.#map.get(event) ?? []
    list.push(once ? onceWrapper(this, event, listener) : listener)
    this.#map.set(event, list)
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
    if (index >= 0) list.splice(index, 1)
    if (list.length === 0) this.#map.delete(event)
  }

  /** A copy, so that listeners added or removed during a call do not disturb it. */
  get(event: string): Listener[] {
    return this.#map.get(event)?.slice() ?? []
  }

  count(event: string): number {
    return this.#map.get(event)?.length ?? 0
  }
}

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
