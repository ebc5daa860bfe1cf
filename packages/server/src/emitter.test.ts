import { describe, expect, it } from 'vitest'
import {
  addListener,
  countOf,
  type Listener,
  type ListenerStore,
  type Listening,
  listenerAt,
  listening,
  onceWrapper,
  removeListener,
} from './emitter.js'

const call = (now: Listening | undefined, ...args: unknown[]) => {
  for (let i = 0; i < countOf(now); i++) (listenerAt(now!, i) as (...a: unknown[]) => unknown)(...args)
}

/** What `listening` holds, as a list. */
const listOf = (store: ListenerStore, event: string): Listener[] => {
  const now = listening(store, event)
  return Array.from({ length: countOf(now) }, (_, i) => listenerAt(now!, i))
}

describe('listener stores', () => {
  it('hand out the listeners as they were when the event started', () => {
    let store: ListenerStore
    const seen: string[] = []
    const late = () => seen.push('late')
    const second = () => seen.push('second')
    store = addListener(store, 'e', () => {
      seen.push('first')
      store = addListener(store, 'e', late)
      store = removeListener(store, 'e', second)
    })
    store = addListener(store, 'e', second)
    call(listening(store, 'e'))
    expect(seen).toEqual(['first', 'second'])
    seen.length = 0
    call(listening(store, 'e'))
    expect(seen).toEqual(['first', 'late'])
  })

  it('remove a once listener after its first call, by itself or by the original function', () => {
    let store: ListenerStore
    let count = 0
    const once = () => count++
    const remove = (wrapper: Listener) => {
      store = removeListener(store, 'e', wrapper)
    }
    store = addListener(store, 'e', onceWrapper(once, remove))
    call(listening(store, 'e'))
    call(listening(store, 'e'))
    expect(count).toBe(1)
    expect(countOf(listening(store, 'e'))).toBe(0)
    store = addListener(store, 'e', onceWrapper(once, remove))
    store = removeListener(store, 'e', once)
    expect(listOf(store, 'e')).toEqual([])
  })

  it('remove one listener, an event, or everything', () => {
    let store: ListenerStore
    const a = () => 1
    const b = () => 2
    store = addListener(store, 'x', a)
    store = addListener(store, 'x', b)
    store = addListener(store, 'y', a)
    store = removeListener(store, 'x', a)
    expect(listOf(store, 'x')).toEqual([b])
    store = removeListener(store, 'x')
    expect(countOf(listening(store, 'x'))).toBe(0)
    expect(listOf(store, 'y')).toEqual([a])
    store = removeListener(store)
    expect(countOf(listening(store, 'y'))).toBe(0)
  })

  it('call the same function twice when it was added twice, and remove one of the two', () => {
    let store: ListenerStore
    let count = 0
    const a = () => count++
    store = addListener(store, 'x', a)
    store = addListener(store, 'x', a)
    call(listening(store, 'x'))
    expect(count).toBe(2)
    store = removeListener(store, 'x', a)
    expect(listOf(store, 'x')).toEqual([a])
  })

  it('keep every event apart past the names they hold side by side', () => {
    let store: ListenerStore
    const fns = Array.from({ length: 12 }, (_, i) => () => i)
    for (const [i, fn] of fns.entries()) store = addListener(store, `e${i}`, fn)
    store = removeListener(store, 'e3', fns[3]!)
    store = addListener(store, 'e0', fns[1]!)
    expect(fns.map((_, i) => countOf(listening(store, `e${i}`)))).toEqual([
      2, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1,
    ])
    expect(listOf(store, 'e11')).toEqual([fns[11]])
    store = removeListener(store, 'e0')
    expect(listOf(store, 'e0')).toEqual([])
    expect(listOf(store, 'e1')).toEqual([fns[1]])
  })

  it('forget an event whose last listener goes, and keep the others in place', () => {
    let store: ListenerStore
    const a = () => 1
    const b = () => 2
    store = addListener(store, 'x', a)
    store = addListener(store, 'y', b)
    store = removeListener(store, 'x', a)
    store = addListener(store, 'z', a)
    expect([listOf(store, 'x'), listOf(store, 'y'), listOf(store, 'z')]).toEqual([[], [b], [a]])
  })
})
