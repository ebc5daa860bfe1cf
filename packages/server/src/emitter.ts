/** A listener of any event; the event maps give it a precise type at the API surface. */
export type Listener = (...args: never[]) => unknown

/**
 * A small listener registry. Unlike Node's EventEmitter it has no special 'error' event, so
 * that the socket can catch what each listener throws. Lists are copied on change, never
 * mutated, so that `get` can hand out the current list without a copy per event.
 */
export class Listeners {
  /**
   * Event names and their lists, side by side (`[name, list, name, list, ...]`) while a socket
   * has few, then a Map. Most sockets listen to a handful of events for their whole life; the
   * flat array costs a few dozen bytes where a Map's table costs about 150 (idle memory per
   * connection is one of Parley's benchmarks), and a scan of a few names is as fast as a lookup.
   */
  #flat: (string | readonly Listener[])[] | undefined
  #map: Map<string, readonly Listener[]> | undefined

  add(event: string, listener: Listener, once = false): void {
    // `concat` makes an array of the exact length; a spread literal reserves room to grow
    // (about 130 bytes more per list, kept for the socket's life).
    this.#set(event, this.get(event).concat(once ? onceWrapper(this, event, listener) : listener))
  }

  remove(event?: string, listener?: Listener): void {
    if (event === undefined) {
      this.#flat = undefined
      this.#map = undefined
      return
    }
    if (listener === undefined) {
      this.#set(event, NONE)
      return
    }
    const list = this.get(event)
    const index = list.findIndex((l) => l === listener || (l as OnceListener).original === listener)
    if (index < 0) return
    this.#set(
      event,
      list.filter((_, i) => i !== index),
    )
  }

  /** The listeners now; listeners added or removed during a call do not change this list. */
  get(event: string): readonly Listener[] {
    if (this.#map) return this.#map.get(event) ?? NONE
    const flat = this.#flat
    if (flat) {
      for (let i = 0; i < flat.length; i += 2)
        if (flat[i] === event) return flat[i + 1] as readonly Listener[]
    }
    return NONE
  }

  count(event: string): number {
    return this.get(event).length
  }

  /** Stores `list` as the listeners of `event`; an empty list forgets the event. */
  #set(event: string, list: readonly Listener[]): void {
    if (this.#map) {
      if (list.length === 0) this.#map.delete(event)
      else this.#map.set(event, list)
      return
    }
    const flat = this.#flat ?? []
    const at = flat.indexOf(event)
    if (list.length === 0) {
      if (at >= 0) flat.splice(at, 2)
    } else if (at >= 0) {
      flat[at + 1] = list
    } else if (flat.length < FLAT_NAMES * 2) {
      // `concat` again for the exact length: `push` would reserve room for 16 more.
      this.#flat = flat.concat([event, list])
      return
    } else {
      this.#map = new Map()
      for (let i = 0; i < flat.length; i += 2)
        this.#map.set(flat[i] as string, flat[i + 1] as readonly Listener[])
      this.#map.set(event, list)
      this.#flat = undefined
      return
    }
    this.#flat = flat
  }
}

/** Past this many event names a socket's listeners move to a Map. */
const FLAT_NAMES = 8

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
