// An HTTP error answer whose JSON body carries a code that is not of Parley's form (empty, in
// lower case, not a string: a proxy's or another service's in front of the server) is read as
// one without a code: PARLEY_TRANSPORT_ERROR (or what the status alone says: a 503 a shutdown, a
// 404 nothing there), its body kept in `details.body` (the 404's too), never an error whose code no
// `switch (error.code)` of the application's meets. The server's own codes, an application's
// among them, still reach the application as they are. Real client against the real server,
// behind a loopback proxy that answers such bodies in its place.
import { ErrorCode, ParleyError } from '@parley/protocol'
import { afterEach, describe, expect, it, onTestFinished } from 'vitest'
import { startFaultProxy } from '../../../test/support/fault-proxy.js'
import { unheard } from '../../../test/support/unheard.js'
import { client, closeAll, next, parleyOf, startServer } from './helpers.js'

afterEach(closeAll)

/** What a proxy in front answers, and the status the error keeps. */
const FOREIGN: [what: string, status: number, body: Record<string, unknown>][] = [
  ['an empty code', 400, { code: '', message: 'bad request' }],
  ['a code in lower case', 429, { code: 'rate_limited', message: 'slow down' }],
  ['a code in mixed case', 403, { code: 'AccessDenied', message: 'blocked by policy', requestId: 'r-1' }],
  ['a code that is no string', 400, { code: 42, message: 'bad request' }],
  ['a code past 64 characters', 400, { code: 'A'.repeat(65), message: 'bad request' }],
]

describe.each(['websocket', 'sse', 'polling'] as const)('over %s', (transport) => {
  /** The scheme of the URL the error names. */
  const scheme = transport === 'websocket' ? 'ws' : 'http'
  it.each(FOREIGN)(
    "reads an error body with %s as one without a code of Parley's, and keeps the body",
    async (_, status, body) => {
      const server = await startServer()
      const proxy = await startFaultProxy(server.port)
      onTestFinished(() => proxy.close())
      proxy.answer = { status, body: JSON.stringify(body) }
      const thrown = await unheard(async () => {
        const socket = client(`${proxy.url}/parley`, { transports: [transport], reconnection: false })
        const [error, willRetry] = await next<[ParleyError<string>, boolean]>(socket, 'connect_error')
        expect(error).toBeInstanceOf(ParleyError)
        expect(error.code).toBe(ErrorCode.TRANSPORT_ERROR)
        expect(error.message).toMatch(
          new RegExp(`^HTTP ${status} from ${scheme}://127\\.0\\.0\\.1:\\d+/parley/`),
        )
        expect(error.details).toMatchObject({ status, body })
        expect(willRetry).toBe(false)
      })
      expect(thrown).toEqual([])
      expect(proxy.refused).toBeGreaterThan(0)
    },
  )

  it.each([
    ['a foreign code', { code: 'upstream_unavailable', message: 'no healthy upstream' }],
    ['no code', { statusCode: 503, error: 'Service Unavailable', message: 'Service Unavailable' }],
  ])('reads a 503 with %s as a server closing, and keeps the body', async (_, body) => {
    const server = await startServer()
    const proxy = await startFaultProxy(server.port)
    onTestFinished(() => proxy.close())
    proxy.answer = { status: 503, body: JSON.stringify(body) }
    const socket = client(`${proxy.url}/parley`, { transports: [transport], reconnection: false })
    const [error] = await next<[ParleyError<string>]>(socket, 'connect_error')
    expect(error.code).toBe(ErrorCode.SERVER_SHUTTING_DOWN)
    expect(error.details).toMatchObject({ status: 503, body })
  })

  it.each([
    ['a foreign code', { code: 'no_route', message: 'no route for this path' }],
    ['a code in mixed case', { code: 'NotFound', message: 'The specified key does not exist.' }],
  ])('reads a 404 with %s as nothing there, and keeps the body', async (_, body) => {
    const server = await startServer()
    const proxy = await startFaultProxy(server.port)
    onTestFinished(() => proxy.close())
    proxy.answer = { status: 404, body: JSON.stringify(body) }
    const socket = client(`${proxy.url}/parley`, { transports: [transport], reconnection: false })
    const [error, willRetry] = await next<[ParleyError<string>, boolean]>(socket, 'connect_error')
    expect(error.code).toBe(ErrorCode.NOT_FOUND)
    expect(error.message).toMatch(new RegExp(`^404 at ${scheme}://127\\.0\\.0\\.1:\\d+/parley/`))
    expect(error.details).toMatchObject({ status: 404, refused: true, body })
    expect(willRetry).toBe(false)
  })

  it("still gives the application its own code, from the server's middleware, through the proxy", async () => {
    const server = await startServer((app) =>
      parleyOf(app).use(async () => {
        throw new ParleyError('AUTH_EXPIRED', 'token expired')
      }),
    )
    const proxy = await startFaultProxy(server.port)
    onTestFinished(() => proxy.close())
    const socket = client(`${proxy.url}/parley`, { transports: [transport], reconnection: false })
    const [error] = await next<[ParleyError<string>]>(socket, 'connect_error')
    expect([error.code, error.message]).toEqual(['AUTH_EXPIRED', 'token expired'])
    expect(error.details?.body).toBeUndefined()
  })
})
