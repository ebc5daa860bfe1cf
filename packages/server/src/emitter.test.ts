import { describe, expect, it } from 'vitest'
import { type Listener, Listeners } from './emitter.js'

const call = (list: readonly Listener[], ...args: unknown[]) => {
  for (const l of list) (l as (...a: unknown[]) => unknown)(...args)
}

describe('Listeners', () => {
  it('hands out the list as it was when the event started', () => {
    const listeners = new Listeners()
    const seen: string[] = []
    const late = () => seen.push('late')
    const second = () => seen.push('second')
    listeners.add('e', () => {
      seen.push('first')
      listeners.add('e', late)
      listeners.remove('e', second)
    })
    listeners.add('e', second)
    call(listeners.get('e'))
    expect(seen).toEqual(['first', 'second'])
    seen.length = 0
    call(listeners.get('e'))
    expect(seen).toEqual(['first', 'late'])
  })

  it('removes a once listener after its first call, by itself or by the original function', () => {
    const listeners = new Listeners()
    let count = 0
    const once = () => count++
    listeners.add('e', once, true)
    call(listeners.get('e'))
    call(listeners.get('e'))
    expect(count).toBe(1)
    expect(listeners.count('e')).toBe(0)
    listeners.add('e', once, true)
    listeners.remove('e', once)
    expect(listeners.get('e')).toEqual([])
  })

  it('removes one listener, an event, or everything', () => {
    const listeners = new Listeners()
    const a = () => 1
    const b = () => 2
    listeners.add('x', a)
    listeners.add('x', b)
    listeners.add('y', a)
    listeners.remove('x', a)
    expect(listeners.get('x')).toEqual([b])
    listeners.remove('x')
    expect(listeners.count('x')).toBe(0)
    listeners.remove()
    expect(listeners.count('y')).toBe(0)
  })

  it('keeps every event apart past the names it holds side by side', () => {
    const listeners = new Listeners()
    const fns = Array.from({ length: 12 }, (_, i) => () => i)
    for (const [i, fn] of fns.entries()) listeners.add(`e${i}`, fn)
    listeners.remove('e3', fns[3]!)
    listeners.add('e0', fns[1]!)
    expect(fns.map((_, i) => listeners.count(`e${i}`))).toEqual([2, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1])
    expect(listeners.get('e11')).toEqual([fns[11]])
    listeners.remove('e0')
    expect(listeners.get('e0')).toEqual([])
    expect(listeners.get('e1')).toEqual([fns[1]])
  })

  it('forgets an event whose last listener goes, and keeps the others in place', () => {
    const listeners = new Listeners()
    const a = () => 1
    const b = () => 2
    listeners.add('x', a)
    listeners.add('y', b)
    listeners.remove('x', a)
    listeners.add('z', a)
    expect([listeners.get('x'), listeners.get('y'), listeners.get('z')]).toEqual([[], [b], [a]])
  })
})
