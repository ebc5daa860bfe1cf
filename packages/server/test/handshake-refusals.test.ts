// A handshake middleware (`app.parley.use`) that refuses, as the real client reads it on each
// transport, and as the server logs it. Only an error with a code of the application's is a
// refusal meant for the client; any other may be a library's (a database driver's, with its
// hosts), so its text stays in the server's log, as for an event middleware (events.test.ts).
import { connect } from '@parley/client'
import { ErrorCode, ParleyError, type TransportName } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { ODD_ERRORS } from '../../../test/support/odd-values.js'
import { unheard } from '../../../test/support/unheard.js'
import { closedAfterEach } from './closed-after-each.js'
import { startServer } from './helpers.js'

// Its clients are refused, and so stop: closing the server leaves none behind.
const opened = closedAfterEach()

const TRANSPORTS: TransportName[] = ['websocket', 'sse', 'polling']
const DRIVER_ERROR = 'connect ECONNREFUSED db.internal:5432 (SELECT * FROM users)'
/** What a package of Parley's rejects with inside a middleware (the Redis adapter's `ready()` with Redis away). */
const INTERNAL_ERROR = Object.assign(new Error('Redis at redis.internal:6379 did not answer'), {
  code: 'PARLEY_REDIS_UNREACHABLE',
})

interface LogLine {
  level: number
  msg: string
  count?: number
  total?: number
  err?: { message: string }
}

/**
 * A server whose middleware lets `auth.token === 'good'` in, refuses `'expired'` with a code of
 * its own, and fails for anything else as a database driver would; its log lines in `logs`.
 */
async function guardedServer() {
  const logs: LogLine[] = []
  const logger = { level: 'debug', stream: { write: (line: string) => void logs.push(JSON.parse(line)) } }
  opened.started = await startServer(
    {},
    (app) => {
      app.parley.use(async (socket) => {
        const token = (socket.handshake.auth as { token?: string } | null)?.token
        if (token === 'good') return
        if (token === 'expired') throw Object.assign(new Error('log in again'), { code: 'AUTH_EXPIRED' })
        if (token === 'store-away') throw INTERNAL_ERROR
        // The application's own admission check, in the words of a busy node.
        if (token === 'full') throw new ParleyError(ErrorCode.SERVER_FULL, 'come back later')
        if (token === 'leaving') throw new ParleyError(ErrorCode.SERVER_SHUTTING_DOWN, 'this node is leaving')
        if (token === 'lowercase') throw Object.assign(new Error('log in again'), { code: 'auth-expired' })
        // Of the form, but a PARLEY_ code that is none of Parley's wire codes.
        if (token === 'parley-prefixed')
          throw Object.assign(new Error('log in again'), { code: 'PARLEY_AUTH_EXPIRED' })
        throw new Error(DRIVER_ERROR)
      })
    },
    { logger },
  )
  return { base: opened.started.base, logs }
}

/** The first `connect_error` of a real client on `transport` alone, and whether it will retry. */
async function refusal(base: string, transport: TransportName, token: string) {
  const c = connect(base, { transports: [transport], auth: { token } })
  return new Promise<[ParleyError<string>, boolean]>((resolve) =>
    c.once('connect_error', (error, willRetry) => resolve([error, willRetry])),
  )
}

describe.each(TRANSPORTS)('a handshake middleware that refuses, over %s', (transport) => {
  it("gives the client an error's own code and message only when the code is the application's", async () => {
    const { base } = await guardedServer()
    const [coded, codedRetry] = await refusal(base, transport, 'expired')
    expect(coded).toMatchObject({ code: 'AUTH_EXPIRED', message: 'log in again' })
    expect(codedRetry).toBe(false)
    const [failed, failedRetry] = await refusal(base, transport, 'bad')
    expect(failed).toMatchObject({ code: 'PARLEY_REFUSED', message: 'refused by middleware' })
    expect(JSON.stringify(failed)).not.toContain('db.internal')
    expect(failedRetry).toBe(false)
    // A code of Parley's own packages is no code of the application's either.
    const [internal] = await refusal(base, transport, 'store-away')
    expect(internal).toMatchObject({ code: 'PARLEY_REFUSED', message: 'refused by middleware' })
    expect(JSON.stringify(internal)).not.toContain('redis.internal')
    expect(opened.started!.app.parley.socketsCount).toBe(0)
  })
})

describe.each(['sse', 'poll'] as const)(
  "a handshake middleware that refuses with a busy node's code, over %s",
  (kind) => {
    it.each([
      ['full', ErrorCode.SERVER_FULL],
      ['leaving', ErrorCode.SERVER_SHUTTING_DOWN],
    ])(
      'answers 503, as the server says the same itself, not the 403 of a refusal (%s)',
      async (token, code) => {
        // A 403 is a refusal of the client: one that reads the status alone would stop for good.
        const { base } = await guardedServer()
        const res = await fetch(`${base}/${kind}?v=1`, {
          method: 'POST',
          body: JSON.stringify([8, { auth: { token } }]),
        })
        expect(res.status).toBe(503)
        expect(await res.json()).toMatchObject({ code })
        // The application's own code is a refusal still.
        const refused = await fetch(`${base}/${kind}?v=1`, {
          method: 'POST',
          body: JSON.stringify([8, { auth: { token: 'expired' } }]),
        })
        expect(refused.status).toBe(403)
        expect(await refused.json()).toMatchObject({ code: 'AUTH_EXPIRED' })
      },
    )
  },
)

describe('handshakes refused with an error without a code of the application', () => {
  it('are logged once per burst, with the first error, and the rest counted at close', async () => {
    const { base, logs } = await guardedServer()
    for (const transport of TRANSPORTS) await refusal(base, transport, 'bad')
    // A refusal on purpose is no failure: at debug, without its error's text at error level.
    await refusal(base, 'websocket', 'expired')
    const failures = () => logs.filter(({ msg }) => msg.includes('handshake middleware failed'))
    expect(failures()).toHaveLength(1)
    expect(failures()[0]).toMatchObject({ level: 50, count: 1, total: 1, err: { message: DRIVER_ERROR } })
    await opened.started!.app.close()
    expect(failures().map((l) => [l.count, l.total])).toEqual([
      [1, 1],
      [2, 3],
    ])
    const errors = logs.filter(({ level }) => level >= 50)
    expect(errors).toHaveLength(2)
    expect(logs.find(({ msg }) => msg.includes('middleware refused a handshake'))).toMatchObject({
      level: 20,
    })
  })
})

describe('a handshake refused with a code that is not one of the application', () => {
  it.each([
    ['lowercase', 'auth-expired'],
    ['parley-prefixed', 'PARLEY_AUTH_EXPIRED'],
  ])('is logged with what such a code is, beside the code it had (%s)', async (token, code) => {
    const { base, logs } = await guardedServer()
    const [failed] = await refusal(base, 'websocket', token)
    expect(failed).toMatchObject({ code: 'PARLEY_REFUSED', message: 'refused by middleware' })
    const line = logs.find(({ msg }) => msg.includes('handshake middleware failed'))
    expect(line?.msg).toContain(
      "without a code of the application's (a code is 1 to 64 of A-Z, 0-9 and _, and begins PARLEY_ only when it is one of Parley's wire codes;",
    )
    expect(line?.err).toMatchObject({ code })
  })
})

describe.each(TRANSPORTS)(
  'a handshake middleware that throws what is no ordinary Error, over %s',
  (transport) => {
    it('refuses the client with what can be read of it, logs it, and nothing escapes', async () => {
      const logs: LogLine[] = []
      // At debug: the line of a coded refusal serializes its err too.
      const logger = { level: 'debug', stream: { write: (line: string) => void logs.push(JSON.parse(line)) } }
      const thrown = await unheard(async () => {
        opened.started = await startServer(
          {},
          (app) => {
            app.parley.use(async (socket) => {
              throw ODD_ERRORS[(socket.handshake.auth as { i: number }).i]![1]()
            })
          },
          { logger },
        )
        const got: unknown[] = []
        for (const [i] of ODD_ERRORS.entries()) {
          const c = connect(opened.started.base, { transports: [transport], auth: { i } })
          const [error, willRetry] = await new Promise<[ParleyError<string>, boolean]>((resolve) =>
            c.once('connect_error', (e, retry) => resolve([e, retry])),
          )
          got.push([error.code, error.message, willRetry])
        }
        // Never "the handshake failed inside the server: try again", retried for ever: the
        // application's refusal, as for any error it throws there.
        expect(got).toEqual(
          ODD_ERRORS.map(([, , code, message]) => [
            code ?? 'PARLEY_REFUSED',
            message ?? 'refused by middleware',
            false,
          ]),
        )
        await opened.started.app.close()
      })
      expect(thrown).toEqual([])
      // Those without a code of the application's in the error lines, the first with its err (a
      // stand-in for one the logger cannot read), the rest counted.
      const failures = logs.filter(({ msg }) => msg.includes('handshake middleware failed'))
      expect(failures.map((l) => l.total)).toEqual([1, ODD_ERRORS.filter(([, , code]) => !code).length])
      expect(failures[0]!.err).toEqual({})
      expect(logs.filter(({ msg }) => msg.includes('middleware refused a handshake'))).toHaveLength(
        ODD_ERRORS.filter(([, , code]) => code).length,
      )
    })
  },
)
