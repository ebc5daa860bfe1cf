// A connect with reconnection off whose handshake middleware is slow: the client tries again
// once after the server gave up on the first run, and the connect settles at connectTimeout.
import { ErrorCode, type ParleyError } from '@parley/protocol'
import { expect } from 'vitest'

/**
 * A client's options for one try again `ms` after the first fails (the backoff's floor, no
 * jitter), and no reconnection after that.
 */
export function tryAgainAfter(ms: number) {
  return { reconnection: false, reconnectionDelay: ms, reconnectionDelayMax: ms, randomization: 0 }
}

/** The connect_error of a connect whose handshake middleware outlasted `connectTimeout`. */
export function expectMiddlewareTimeout(error: ParleyError<string>, connectTimeout: number): void {
  expect(error.code).toBe(ErrorCode.HANDSHAKE_TIMEOUT)
  expect(error.message).toBe(`no OPEN within ${connectTimeout} ms`)
  expect(error.details).toMatchObject({ middleware: true })
}
