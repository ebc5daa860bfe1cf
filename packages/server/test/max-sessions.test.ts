// `maxSessions` bounds what a flood of handshakes can make one node hold: past it a new session
// is refused with PARLEY_SERVER_FULL, while the sessions already there go on and resume freely.
import { Writable } from 'node:stream'
import { ErrorCode } from '@parley/protocol'
import parley, { type ParleyServerOptions } from '@parley/server'
import Fastify, { type FastifyInstance } from 'fastify'
import { Registry } from 'prom-client'
import { afterEach, describe, expect, it } from 'vitest'
import { closeApp, until } from './helpers.js'
import { type RawClient, Refused, rawConnect } from './raw-client.js'

const TRANSPORTS = ['websocket', 'sse', 'polling'] as const

let app: FastifyInstance | undefined
const clients: RawClient[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  await closeApp(app)
  app = undefined
})

interface LogLine {
  level: number
  msg: string
  count?: number
  total?: number
  maxSessions?: number
}

/** A server whose warn lines the test reads. */
async function serve(options: ParleyServerOptions, setup?: (app: FastifyInstance) => void) {
  const lines: LogLine[] = []
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)))
      done()
    },
  })
  app = Fastify({ forceCloseConnections: true, logger: { level: 'warn', stream } })
  await app.register(parley, options)
  setup?.(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (!address || typeof address === 'string') throw new Error('no port')
  return { app, lines, base: `http://127.0.0.1:${address.port}/parley` }
}

async function connect(...args: Parameters<typeof rawConnect>): Promise<RawClient> {
  const client = await rawConnect(...args)
  clients.push(client)
  return client
}

/** The refusal a handshake got; fails the test when it was accepted. */
async function refusal(...args: Parameters<typeof rawConnect>): Promise<Refused> {
  const outcome = await connect(...args).catch((err: unknown) => err)
  if (!(outcome instanceof Refused)) throw new Error(`expected a refusal, got ${String(outcome)}`)
  return outcome
}

const fullLines = (lines: LogLine[]) => lines.filter((l) => l.msg.includes('maxSessions'))

describe.each(TRANSPORTS)('over %s', (transport) => {
  it('refuses a new session past maxSessions, resumes the ones held, and takes new ones once there is room', async () => {
    const registry = new Registry()
    const { app, lines, base } = await serve({ maxSessions: 2, metrics: { registry } })
    const first = await connect(transport, base)
    const second = await connect(transport, base)

    const refused = await refusal(transport, base)
    expect(refused.code).toBe(ErrorCode.SERVER_FULL)
    // Over HTTP a 503: the client takes it as "try again later", not as a refusal of itself.
    if (transport !== 'websocket') expect(refused.status).toBe(503)
    // A sid this node does not know would be a new session too.
    expect((await refusal(transport, base, { sid: 'V1StGXR8_Z5jdHi6B-myT', ack: 0 })).code).toBe(
      ErrorCode.SERVER_FULL,
    )
    expect(app.parley.socketsCount).toBe(2)

    // A session whose transport is gone still counts (it waits in its recovery window), and
    // its resume is not refused.
    first.close()
    expect((await refusal(transport, base)).code).toBe(ErrorCode.SERVER_FULL)
    const resumed = await connect(transport, base, { sid: first.sid, ack: 0 })
    expect(resumed.open.recovered).toBe(true)

    // One ends: there is room for one more, and no more.
    app.parley.sockets.get(second.id)?.disconnect()
    const third = await connect(transport, base)
    expect(third.open.recovered).toBe(false)
    expect((await refusal(transport, base)).code).toBe(ErrorCode.SERVER_FULL)

    const metric = await registry.getSingleMetricAsString('parley_sessions_refused_total')
    expect(metric).toMatch(/^parley_sessions_refused_total 4$/m)
    // Four refusals within 10 s: one line, which says what to do.
    await until(() => fullLines(lines).length === 1, 3000, 'the log line')
    expect(fullLines(lines)[0]).toMatchObject({ level: 40, count: 1, total: 1, maxSessions: 2 })
    // The other three are logged at close, not lost.
    await app.close()
    expect(fullLines(lines).map((l) => [l.count, l.total])).toEqual([
      [1, 1],
      [3, 4],
    ])
  })
})

it('holds the bound when handshakes wait in an async middleware together', async () => {
  let release = () => {}
  const gate = new Promise<void>((resolve) => {
    release = resolve
  })
  let waiting = 0
  const { app, base } = await serve({ maxSessions: 1 }, (app) => {
    app.parley.use(async () => {
      waiting++
      await gate
    })
  })
  // Both pass the check before the middleware (the node is empty), then wait in it.
  const attempts = [connect('polling', base), connect('websocket', base)].map((p) =>
    p.then(
      (client) => ({ client }),
      (err: unknown) => ({ err }),
    ),
  )
  await until(() => waiting === 2, 3000, 'both handshakes in the middleware')
  release()
  const outcomes = await Promise.all(attempts)
  const opened = outcomes.filter((o) => 'client' in o)
  const refused = outcomes.flatMap((o) => ('err' in o && o.err instanceof Refused ? [o.err] : []))
  expect(opened).toHaveLength(1)
  expect(refused.map((r) => r.code)).toEqual([ErrorCode.SERVER_FULL])
  expect(app.parley.socketsCount).toBe(1)
})

it('does not run the middleware for a handshake it refuses', async () => {
  let ran = 0
  const { base } = await serve({ maxSessions: 1 }, (app) => {
    app.parley.use(() => {
      ran++
    })
  })
  await connect('websocket', base)
  expect((await refusal('sse', base)).code).toBe(ErrorCode.SERVER_FULL)
  expect(ran).toBe(1)
})
