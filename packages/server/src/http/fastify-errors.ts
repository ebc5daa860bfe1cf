import { ErrorCode } from '@parley/protocol'
import type { FastifyBaseLogger, FastifyError, FastifyRequest } from 'fastify'
import { BurstLog } from '../burst-log.js'
import { FAILED_INSIDE } from '../refusals.js'

/** What Parley's routes answer in place of one of Fastify's own errors. */
export interface FastifyErrorAnswer {
  status: number
  code: ErrorCode
  message: string
  /** The request's body may still be on its way: the connection closes after the answer. */
  closeConnection: boolean
}

/**
 * Parley's answer to an error of Fastify's own (a `FST_ERR_*` code) on one of Parley's routes,
 * or undefined for any other error: the application's (its `onRequest` hook that refuses with a
 * code of its own, say), which its error handler answers as on its other routes. A client reads
 * the code of an error answer and acts on it (docs/errors.md); Fastify's codes mean nothing to
 * it, and its answers carry none of the endpoints' CORS headers, so a page on another origin
 * could not even read them.
 */
export function answerToFastifyError(
  error: FastifyError,
  request: FastifyRequest,
): FastifyErrorAnswer | undefined {
  const code = error.code
  if (typeof code !== 'string' || !code.startsWith('FST_')) return undefined
  const post = request.method === 'POST'
  if (code === 'FST_ERR_HANDLER_TIMEOUT') {
    // The application's `handlerTimeout`: the middleware, the adapter or a body took longer.
    const limit = `the server's handlerTimeout (${request.routeOptions.handlerTimeout} ms)`
    const query = request.query as Record<string, unknown>
    // A handshake is tried again, on the next transport (as after no OPEN within connectTimeout).
    if (post && query.sid === undefined) {
      return answer(503, ErrorCode.HANDSHAKE_TIMEOUT, `the handshake took longer than ${limit}`, true)
    }
    // As a POST body that stalled: the transport fails, and the client resumes.
    return answer(408, ErrorCode.BAD_REQUEST, `the request took longer than ${limit}`, post)
  }
  const status = typeof error.statusCode === 'number' ? error.statusCode : 500
  if (status >= 500) {
    // Inside the server (logged by the caller): not the client's to mend, so it tries again.
    return answer(503, ErrorCode.SERVER_SHUTTING_DOWN, FAILED_INSIDE, post)
  }
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return answer(413, ErrorCode.PAYLOAD_TOO_LARGE, 'the body is too large', true)
  }
  if (status === 405) return answer(405, ErrorCode.METHOD_NOT_ALLOWED, error.message, post)
  // A malformed request Fastify itself turned away (its message says what).
  return answer(status, ErrorCode.BAD_REQUEST, error.message, post)
}

function answer(
  status: number,
  code: ErrorCode,
  message: string,
  closeConnection: boolean,
): FastifyErrorAnswer {
  return { status, code, message, closeConnection }
}

/**
 * The log of the requests whose Fastify error was answered with a 5xx (a `handlerTimeout` run
 * out, or an error inside the server). A client brings the first kind as often as it likes (a
 * handshake whose body comes slower than the timeout), and a slow network to every client at
 * once: one line per burst (see `BurstLog`), the first at once with its `err`
 * and the `code` it was answered.
 */
export function failedRequestsLog(log: FastifyBaseLogger): BurstLog<{ err: unknown; code: ErrorCode }> {
  return new BurstLog(
    log,
    'error',
    (count, first) =>
      `request failed for ${count} request(s) since the last such line, with a 5xx answer (the first: its err, answered ${first?.code}); their clients try again`,
  )
}
