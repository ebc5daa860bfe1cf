/*
 * What an application hands over or throws may fight being read: a Proxy whose traps throw, a
 * revoked one, a getter that throws, an object without prototype (no `toString`), a frozen error
 * (which pino's serializer cannot mark as seen). The server reads such values only through these,
 * so that they end as the coded error or the refusal meant for them, never as a TypeError thrown
 * from the server's own code (in a timer or a promise, a crash).
 */

/**
 * `value` as text for a message; never throws: a symbol as `Symbol(x)`, a value that cannot be
 * shown (an object without prototype, a Proxy whose traps throw) as `[object]`.
 */
export function shown(value: unknown): string {
  try {
    return String(value)
  } catch {
    return `[${typeof value}]`
  }
}

/** `value instanceof Class`, false where that throws (a revoked Proxy, a Proxy's trap). */
export function isInstance(value: unknown, Class: abstract new (...args: never[]) => unknown): boolean {
  try {
    return value instanceof Class
  } catch {
    return false
  }
}

/** `value[key]`, or undefined when it has none or reading it throws. */
export function readKey(value: unknown, key: string): unknown {
  try {
    return (value as Record<string, unknown> | null | undefined)?.[key]
  } catch {
    return undefined
  }
}

/**
 * `err` as a log line can hold it: a symbol or undefined (what `throw` or `next()` may be given)
 * as text (`Symbol(x)`, `undefined`), since the logger's JSON leaves such a value out and the
 * line would say nothing of what was thrown; anything else as it is, for the logger's serializer.
 */
export function loggable(err: unknown): unknown {
  return typeof err === 'symbol' || err === undefined ? shown(err) : err
}

/**
 * What a log line shows as `err` in place of `error` when the logger cannot serialize it (pino
 * marks each error it walks, so a frozen one throws; a getter or a Proxy's trap may throw): its
 * message and stack where they can be read, else the value named as `shown` names it.
 */
export function standIn(error: unknown): { message: string; stack?: string } {
  const stack = readKey(error, 'stack')
  return {
    message: shown(readKey(error, 'message') ?? error),
    ...(typeof stack === 'string' && { stack }),
  }
}
