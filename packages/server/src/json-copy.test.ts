import { describe, expect, it } from 'vitest'
import { revoked, trapsThrow } from '../../../test/support/odd-values.js'
import { jsonCopy } from './json-copy.js'

describe('jsonCopy', () => {
  it('copies plain JSON deeply, a new object at every level', () => {
    const value = { name: 'a', n: 1.5, ok: true, none: null, list: [1, 'two', { three: [3] }] }
    const copy = jsonCopy(value)
    expect(copy).toEqual(value)
    expect(copy).not.toBe(value)
    expect((copy as typeof value).list).not.toBe(value.list)
    expect(jsonCopy(Object.assign(Object.create(null), { a: 1 }))).toEqual({ a: 1 })
  })

  it.each([
    ['a Map', new Map([['a', 1]])],
    ['a Set', new Set([1])],
    ['a Date', new Date(0)],
    ['a function', () => 1],
    ['undefined', undefined],
    ['an undefined in an array', [1, undefined]],
    ['NaN', { n: Number.NaN }],
    ['Infinity', [Number.POSITIVE_INFINITY]],
    ['a bigint', { n: 1n }],
    ['a class instance', new (class Point {})()],
    ['a Uint8Array', new Uint8Array(2)],
    ['an own __proto__ key', JSON.parse('{"__proto__": {"polluted": true}}')],
    // Read when a session is handed off: what throws there is no plain JSON, and must not throw.
    ['a Proxy whose every trap throws', { user: trapsThrow() }],
    ['a revoked Proxy', [revoked()]],
    [
      'a getter that throws',
      {
        get user() {
          throw new Error('getter')
        },
      },
    ],
  ])('refuses %s', (_what, value) => {
    expect(jsonCopy(value)).toBeUndefined()
  })

  it('refuses a cycle and a value nested too deep, without overflowing the stack', () => {
    const cycle: Record<string, unknown> = {}
    cycle.self = cycle
    expect(jsonCopy(cycle)).toBeUndefined()
    let deep: unknown = 1
    for (let i = 0; i < 100_000; i++) deep = [deep]
    expect(jsonCopy(deep)).toBeUndefined()
  })

  it('leaves out keys set to undefined, as JSON does', () => {
    expect(jsonCopy({ nick: 'ada', token: undefined, nested: { gone: undefined, kept: 1 } })).toEqual({
      nick: 'ada',
      nested: { kept: 1 },
    })
  })

  it('copies a value shared twice (no cycle) twice', () => {
    const shared = { a: 1 }
    expect(jsonCopy({ x: shared, y: shared })).toEqual({ x: { a: 1 }, y: { a: 1 } })
  })
})
