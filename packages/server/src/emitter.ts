/** A listener of any event; the event maps give it a precise type at the API surface. */
export type Listener = (...args: never[]) => unknown

/**
 * The listeners of one event: the function itself while there is one (the usual case), else
 * a list. Never mutated, only replaced, so that a caller can go through what it was handed
 * while listeners are added or removed under it, without a copy per event.
 */
export type Listening = Listener | readonly Listener[]

/**
 * A socket's listeners: nothing, or event names and their listeners side by side
 * (`[name, listening, name, listening, ...]`) while a socket has few, then a Map. Most sockets
 * listen to a handful of events for their whole life; the flat array costs a few dozen bytes
 * where a Map's table costs about 150, and a scan of a few names is as fast as a lookup. It is
 * a value that the socket keeps in one of its fields, not an object around it (idle memory per
 * connection is one of Parley's benchmarks): the functions below take a store and return the
 * new one.
 *
 * Unlike Node's EventEmitter there is no special 'error' event, so that the socket can catch
 * what each listener throws.
 */
export type ListenerStore = undefined | (string | Listening)[] | Map<string, Listening>

/** Past this many event names a store moves to a Map. */
const FLAT_NAMES = 8

/** The listeners of `event` now; later changes to the store do not change what is returned. */
export function listening(store: ListenerStore, event: string): Listening | undefined {
  if (store === undefined) return undefined
  if (store instanceof Map) return store.get(event)
  for (let i = 0; i < store.length; i += 2) if (store[i] === event) return store[i + 1] as Listening
  return undefined
}

/** How many listeners `listening` holds. */
export const countOf = (listening: Listening | undefined): number =>
  listening === undefined ? 0 : typeof listening === 'function' ? 1 : listening.length

/** The listener at `index` (below `countOf`). */
export const listenerAt = (listening: Listening, index: number): Listener =>
  typeof listening === 'function' ? listening : listening[index]!

/** The store with `listener` added, last, to the listeners of `event`. */
export function addListener(store: ListenerStore, event: string, listener: Listener): ListenerStore {
  const now = listening(store, event)
  // `concat` makes an array of the exact length; a spread literal reserves room to grow.
  return withListening(store, event, now === undefined ? listener : ([] as Listener[]).concat(now, listener))
}

/**
 * The store without one listener of `event` (the first that is `listener` or a `once` wrapper
 * of it), without every listener of `event`, or, with no event, empty.
 */
export function removeListener(store: ListenerStore, event?: string, listener?: Listener): ListenerStore {
  if (event === undefined) return undefined
  if (listener === undefined) return withListening(store, event, undefined)
  const now = listening(store, event)
  if (now === undefined) return store
  const list = typeof now === 'function' ? [now] : now
  const index = list.findIndex((l) => l === listener || (l as OnceListener).original === listener)
  if (index < 0) return store
  const rest = list.filter((_, i) => i !== index)
  return withListening(store, event, rest.length === 0 ? undefined : rest.length === 1 ? rest[0] : rest)
}

/** The store with `now` as the listeners of `event`; undefined forgets the event. */
function withListening(store: ListenerStore, event: string, now: Listening | undefined): ListenerStore {
  if (store instanceof Map) {
    if (now === undefined) store.delete(event)
    else store.set(event, now)
    return store
  }
  const flat = store ?? []
  const at = flat.indexOf(event)
  if (at >= 0) {
    if (now === undefined) {
      const rest = flat.filter((_, i) => i !== at && i !== at + 1)
      return rest.length === 0 ? undefined : rest
    }
    flat[at + 1] = now
    return flat
  }
  if (now === undefined) return store
  // `concat` again for the exact length: `push` would reserve room for 16 more.
  if (flat.length < FLAT_NAMES * 2) return flat.concat([event, now])
  const map = new Map<string, Listening>()
  for (let i = 0; i < flat.length; i += 2) map.set(flat[i] as string, flat[i + 1] as Listening)
  map.set(event, now)
  return map
}

interface OnceListener extends Listener {
  original: Listener
}

/**
 * `listener`, to be called once: the wrapper calls `remove` with itself first. `removeListener`
 * finds the wrapper by the original function too.
 */
export function onceWrapper(listener: Listener, remove: (wrapper: Listener) => void): Listener {
  const wrapper = ((...args: never[]) => {
    remove(wrapper)
    return listener(...args)
  }) as OnceListener
  wrapper.original = listener
  return wrapper
}
