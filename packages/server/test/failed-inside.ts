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

/**
 * An error such as a bug inside the server might throw, frozen: Fastify's logger (pino) marks
 * each error it serializes, and throws on one it cannot mark. The server's line for it must go
 * all the same (with a stand-in for `err`), and the request still be answered.
 */
export function frozenBug(message: string): Error {
  return Object.freeze(new Error(message))
}

/** A line of a logger's output, as JSON. */
export interface LoggedLine {
  level: number
  msg: string
  err?: { message?: string }
}

/** Fastify's `logger` option at warn, its lines pushed to `lines`. */
export function warnLogger(lines: LoggedLine[]) {
  return { level: 'warn', stream: { write: (line: string) => void lines.push(JSON.parse(line)) } }
}

/** Checks that `lines` hold the warning `msg` about the error whose message is `message`. */
export function expectWarned(lines: LoggedLine[], msg: string, message: string): void {
  expect(lines).toContainEqual(
    expect.objectContaining({ level: 40, msg, err: expect.objectContaining({ message }) }),
  )
}
