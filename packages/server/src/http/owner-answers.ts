import type { IncomingMessage } from 'node:http'
import { isWireCode } from '@parley/protocol'

/** The most of an owner's error answer read for its `{code, message}`: Parley's are far shorter. */
export const MOST_READ = 4096

/**
 * Calls `done` once with the start of `response`'s body (up to `MOST_READ`), however it ends;
 * `whole` is false when the body went on past it or broke off.
 */
export function readAnswer(response: IncomingMessage, done: (body: string, whole: boolean) => void): void {
  let body = ''
  let called = false
  const finish = (whole: boolean) => {
    if (called) return
    called = true
    done(body, whole)
  }
  response.setEncoding('utf8')
  response.on('data', (chunk: string) => {
    body += chunk
    if (body.length > MOST_READ) finish(false)
  })
  response.once('end', () => finish(true))
  response.once('close', () => finish(false))
  response.once('error', () => finish(false))
}

/**
 * The `{code, message}` of an error answer of Parley's (or of an application's hook with a code
 * of its own), as the owner's endpoints give it; undefined for any other body: an answer from
 * before its routes (headers past its limit once the forwarding node added its own, Fastify's
 * bare 503 while it closes, a proxy's), which tells the client nothing it can act on.
 */
export function codedError(body: string): { code: string; message: string } | undefined {
  try {
    const parsed = JSON.parse(body) as { code?: unknown; message?: unknown }
    // A code as an ERROR packet may carry it (docs/protocol.md, ERROR).
    if (isWireCode(parsed.code) && typeof parsed.message === 'string') {
      return { code: parsed.code, message: parsed.message }
    }
  } catch {
    // Not JSON: not Parley's.
  }
  return undefined
}
