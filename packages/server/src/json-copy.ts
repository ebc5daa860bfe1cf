import { isForbiddenKey, type JsonValue } from '@parley/protocol'

/** Deeper than this, a value is not copied: `socket.data` is state, not a document. */
const MAX_DEPTH = 64

/**
 * A deep copy of `value` when it is plain JSON (null, booleans, finite numbers, strings,
 * arrays, plain objects, nothing else at any depth; an object's keys set to `undefined` are left
 * out, as JSON has it); undefined otherwise. Stricter than a `JSON.stringify` round trip, which
 * silently turns a Date into a string and drops functions and Map contents: a value that would
 * not come back the same is not copied.
 */
export function jsonCopy(value: unknown): JsonValue | undefined {
  try {
    return plainCopy(value, 0)
  } catch {
    // A Proxy whose traps throw, a getter that throws: not plain JSON either.
    return undefined
  }
}

function plainCopy(value: unknown, depth: number): JsonValue | undefined {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined
  if (typeof value !== 'object' || depth >= MAX_DEPTH) return undefined
  if (Array.isArray(value)) {
    const copy: JsonValue[] = []
    for (const item of value) {
      const inner = plainCopy(item, depth + 1)
      if (inner === undefined) return undefined
      copy.push(inner)
    }
    return copy
  }
  const proto = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) return undefined
  const copy: { [key: string]: JsonValue } = {}
  for (const [key, item] of Object.entries(value)) {
    // `__proto__` as an own key (JSON.parse makes those) would set the copy's prototype.
    if (isForbiddenKey(key)) return undefined
    // A key set to undefined is a key not set, as JSON.stringify has it (`data.token = undefined`).
    if (item === undefined) continue
    const inner = plainCopy(item, depth + 1)
    if (inner === undefined) return undefined
    copy[key] = inner
  }
  return copy
}
