import { ErrorCode, ParleyError } from './errors.js'
import { WireLimits } from './packets.js'

/** How a binary leaf came in, so that it comes out the same type on the other side. */
export const BinaryKind = { BYTES: 0, ARRAY_BUFFER: 1 } as const
export type BinaryKind = (typeof BinaryKind)[keyof typeof BinaryKind]

/** One path step: an array index or an object key. */
export type PathStep = number | string

export interface BinaryLeaf {
  path: PathStep[]
  kind: BinaryKind
  bytes: Uint8Array
}

/** True for a binary leaf: an `ArrayBuffer` or any view of one (`Uint8Array`, `Buffer`, ...). */
export function isBinary(value: unknown): value is Uint8Array | ArrayBuffer | ArrayBufferView {
  return value instanceof ArrayBuffer || ArrayBuffer.isView(value)
}

/**
 * True when `value` holds a binary leaf anywhere. Allocation-free, because it runs on every
 * outgoing message. Throws UNSERIALIZABLE past the depth limit (this also catches cycles).
 */
export function hasBinary(value: unknown, depth = 0): boolean {
  if (value === null || typeof value !== 'object') return false
  if (isBinary(value)) return true
  if (depth > WireLimits.maxDepth) throw tooDeep()
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (hasBinary(value[i], depth + 1)) return true
    return false
  }
  // Objects that serialise themselves (Date, ...) are left to JSON.stringify.
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return false
  for (const key in value) {
    if (Object.hasOwn(value, key) && hasBinary((value as Record<string, unknown>)[key], depth + 1))
      return true
  }
  return false
}

/**
 * Copies `value` with every binary leaf replaced by `null`, and lists the leaves with their
 * paths. Call only when `hasBinary` said yes: the copy is what makes this the slow path.
 */
export function extractBinary(value: unknown, leaves: BinaryLeaf[], path: PathStep[] = []): unknown {
  if (value === null || typeof value !== 'object') return value
  if (isBinary(value)) {
    leaves.push({ path: path.slice(), ...bytesOf(value) })
    return null
  }
  if (path.length > WireLimits.maxDepth) throw tooDeep()
  if (Array.isArray(value)) {
    const copy: unknown[] = new Array(value.length)
    for (let i = 0; i < value.length; i++) {
      path.push(i)
      copy[i] = extractBinary(value[i], leaves, path)
      path.pop()
    }
    return copy
  }
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return value
  const copy: Record<string, unknown> = {}
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue
    path.push(key)
    // defineProperty, not assignment: a key named __proto__ must stay a plain key.
    Object.defineProperty(copy, key, {
      value: extractBinary((value as Record<string, unknown>)[key], leaves, path),
      enumerable: true,
      writable: true,
      configurable: true,
    })
    path.pop()
  }
  return copy
}

function bytesOf(value: ArrayBuffer | ArrayBufferView): { kind: BinaryKind; bytes: Uint8Array } {
  if (value instanceof ArrayBuffer) return { kind: BinaryKind.ARRAY_BUFFER, bytes: new Uint8Array(value) }
  return { kind: BinaryKind.BYTES, bytes: new Uint8Array(value.buffer, value.byteOffset, value.byteLength) }
}

/**
 * Puts binary leaves back into a decoded value. Every path must lead, through existing own
 * containers, to a `null` placeholder; anything else is a crafted packet and is refused.
 */
export function insertBinary(
  root: unknown[],
  path: readonly unknown[],
  leaf: Uint8Array | ArrayBuffer,
): boolean {
  // A leaf sits one step below the deepest container an argument may have.
  if (path.length === 0 || path.length > WireLimits.maxDepth + 1) return false
  let container: unknown = root
  for (let i = 0; i < path.length; i++) {
    const step = path[i]
    const isLast = i === path.length - 1
    if (Array.isArray(container)) {
      if (typeof step !== 'number' || !Number.isInteger(step) || step < 0 || step >= container.length)
        return false
      if (isLast) {
        if (container[step] !== null) return false
        container[step] = leaf
        return true
      }
      container = container[step]
    } else if (container !== null && typeof container === 'object' && !isBinary(container)) {
      if (typeof step !== 'string' || !Object.hasOwn(container, step)) return false
      const record = container as Record<string, unknown>
      if (isLast) {
        if (record[step] !== null) return false
        record[step] = leaf
        return true
      }
      container = record[step]
    } else {
      return false
    }
  }
  return false
}

function tooDeep(): ParleyError {
  return new ParleyError(
    ErrorCode.UNSERIALIZABLE,
    `payload is nested deeper than ${WireLimits.maxDepth} levels (or is cyclic)`,
  )
}
