// A session's requests sent under route parameters other than those it opened at: each refused
// with its code, as parameter-prefix-close.test.ts and tenant-session.test.ts both check.

import { ErrorCode } from '@parley/protocol'
import { expect } from 'vitest'
import { within } from './helpers.js'
import { exchange } from './http-exchange.js'

/** Sends each `[method, body]` to `url` in turn and expects it refused 400 PARLEY_UNKNOWN_SESSION. */
export async function expectRefusedUnderOtherParameters(
  url: string,
  requests: readonly (readonly [method: string, body: string])[],
) {
  for (const [method, body] of requests) {
    const answer = await within(
      exchange(url, method, { 'content-type': 'text/plain' }, body),
      5000,
      `the answer to the ${method}`,
    )
    expect([method, answer.status, answer.body.code, answer.body.message]).toEqual([
      method,
      400,
      ErrorCode.UNKNOWN_SESSION,
      'the session was opened under other route parameters',
    ])
  }
}
