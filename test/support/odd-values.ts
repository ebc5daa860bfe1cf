// Values an application may hand to an API (as an argument, an option, or by throwing it) that
// fight being read or shown: a message naming one, or a check reading one, throws the engine's own
// TypeError ("Cannot convert object to primitive value") unless the API takes care. Each is made
// fresh by its function: a revoked Proxy stays revoked, a test may keep what it was given.

/** A Proxy on which every operation throws `Error('trap')`, even looking up its traps. */
export function trapsThrow(): object {
  return new Proxy(
    {},
    new Proxy(
      {},
      {
        get() {
          throw new Error('trap')
        },
      },
    ),
  )
}

/** A revoked Proxy: every operation on it throws the engine's TypeError, `instanceof` included. */
export function revoked(): object {
  const { proxy, revoke } = Proxy.revocable({}, {})
  revoke()
  return proxy
}

/** Values that no template or `String()` can show. */
export const UNSHOWABLE: readonly (readonly [name: string, make: () => unknown])[] = [
  ['an object without prototype', () => Object.create(null)],
  ['a Proxy whose every trap throws', trapsThrow],
  ['a revoked Proxy', revoked],
  [
    'an object whose toString and Symbol.toPrimitive throw',
    () => ({
      toString() {
        throw new Error('toString')
      },
      [Symbol.toPrimitive]() {
        throw new Error('toPrimitive')
      },
    }),
  ],
  [
    'an Error whose message getter throws',
    () =>
      Object.defineProperty(new Error(), 'message', {
        get() {
          throw new Error('message')
        },
      }),
  ],
]
