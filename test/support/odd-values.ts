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

/**
 * What a middleware or a handler may throw, or give `next()`, that is no ordinary Error, and what
 * its refusal must carry: the application's code and message where they can be read, else
 * (undefined) the server's fallback code or message, as for any error without a code.
 */
export const ODD_ERRORS: readonly (readonly [
  name: string,
  make: () => unknown,
  code: string | undefined,
  message: string | undefined,
])[] = [
  ['an object without prototype', () => Object.create(null), undefined, undefined],
  ['a Proxy whose every trap throws', trapsThrow, undefined, undefined],
  ['a revoked Proxy', revoked, undefined, undefined],
  ['a string', () => 'no entry', undefined, undefined],
  ['a number', () => 42, undefined, undefined],
  [
    'a frozen Error with a code',
    () => Object.freeze(Object.assign(new Error('frozen out'), { code: 'FROZEN_OUT' })),
    'FROZEN_OUT',
    'frozen out',
  ],
  [
    'a frozen object with a code',
    () => Object.freeze({ code: 'FROZEN_OUT', message: 'not an Error' }),
    'FROZEN_OUT',
    undefined,
  ],
  [
    'an Error with a code whose message getter throws',
    () =>
      Object.defineProperty(Object.assign(new Error(), { code: 'NO_MESSAGE' }), 'message', {
        get() {
          throw new Error('message')
        },
      }),
    'NO_MESSAGE',
    undefined,
  ],
  [
    'an Error whose code getter throws',
    () =>
      Object.defineProperty(new Error('no code'), 'code', {
        get() {
          throw new Error('code')
        },
      }),
    undefined,
    undefined,
  ],
  [
    'an Error with a code and a message without prototype',
    () => Object.assign(new Error(), { code: 'ODD_MESSAGE', message: Object.create(null) }),
    'ODD_MESSAGE',
    undefined,
  ],
]
