import { ErrorCode } from '@parley/protocol'
import { expect } from 'vitest'

/** The body of the answer to a request that failed inside the server (`failedInside`, refusals.ts). */
export const FAILED_INSIDE_BODY = {
  code: ErrorCode.SERVER_SHUTTING_DOWN,
  message: 'the request failed inside the server: try again',
}

/** Checks that `res` is that answer: 503, the body above, and the page's CORS header when given. */
export async function expectFailedInside(res: Response, origin?: string): Promise<void> {
  expect(res.status).toBe(503)
  if (origin !== undefined) expect(res.headers.get('access-control-allow-origin')).toBe(origin)
  expect(await res.json()).toEqual(FAILED_INSIDE_BODY)
}
