// A session's requests sent under route parameters other than those it opened at: each answered
// as one naming no session is (400 while the instance is open, 503 while it closes), as
// parameter-prefix-close.test.ts and tenant-session.test.ts both check.

import { ErrorCode } from '@parley/protocol'
import { expect } from 'vitest'
import { within } from './helpers.js'
import { exchange } from './http-exchange.js'

/** What a request naming no session gets: while the instance is open, and while it closes. */
const NO_SESSION = {
  open: [400, ErrorCode.UNKNOWN_SESSION, 'no such session'],
  closing: [503, ErrorCode.SERVER_SHUTTING_DOWN, 'the server is shutting down'],
} as const

/**
 * Sends each `[method, body]` to `url` in turn and expects it answered as a request naming no
 * session is at that time (`when`).
 */
export async function expectRefusedUnderOtherParameters(
  url: string,
  requests: readonly (readonly [method: string, body: string])[],
  when: keyof typeof NO_SESSION = 'open',
) {
  for (const [method, body] of requests) {
    const answer = await within(
      exchange(url, method, { 'content-type': 'text/plain' }, body),
      5000,
      `the answer to the ${method}`,
    )
    expect([method, answer.status, answer.body.code, answer.body.message]).toEqual([
      method,
      ...NO_SESSION[when],
    ])
  }
}
