// Parley under `/:tenant`: a request that names a session's sid under another tenant gets the
// answer a sid that names no session gets there, on every path a request names a sid (a live
// session's GET and POST, its goodbye, its last words, a session that ended, while the instance
// closes), and leaves the session alone: not ended, not moved, its packets not taken.

import { encodeText, PacketType } from '@parley/protocol'
import parley, { type ParleyServer, type ServerSocket } from '@parley/server'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { holding } from './held-events.js'
import { until, within } from './helpers.js'
import { type Answer, exchange } from './http-exchange.js'
import { type RawClient, rawConnect } from './raw-client.js'

const teardown: (() => Promise<void> | void)[] = []

afterEach(async () => {
  for (const step of teardown.splice(0).reverse()) await step()
})

/** A sid no session ever had: what the other tenant's answers are held to. */
const NONE = 'AAAAAAAAAAAAAAAAAAAAAA'

const EVENT = encodeText({ type: PacketType.EVENT, seq: 1, name: 'note', args: ['from globex'], ackId: 0 })
/** Small enough for a POST past it to be cheap. */
const MAX_PAYLOAD = 4096
const TOO_LARGE = encodeText({
  type: PacketType.EVENT,
  seq: 1,
  name: 'note',
  args: ['x'.repeat(MAX_PAYLOAD)],
  ackId: 0,
})
const GOODBYE = encodeText({ type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' })

/**
 * Parley under `/:tenant` (with `transports` when given), its sockets, the events they heard, and
 * the instance's server.
 */
async function underTenant(transports?: ('websocket' | 'sse' | 'polling')[]) {
  const app: FastifyInstance = Fastify({ forceCloseConnections: true })
  const sockets: ServerSocket[] = []
  const heard: unknown[] = []
  const hold = holding()
  let server: ParleyServer | undefined
  await app.register(
    async (tenant) => {
      await tenant.register(parley, { maxPayload: MAX_PAYLOAD, ...(transports && { transports }) })
      tenant.parley.on('connection', (socket) => {
        sockets.push(socket)
        hold.onConnection(socket)
        socket.on('note', (text: unknown) => void heard.push(text))
      })
      server = tenant.parley
    },
    { prefix: '/:tenant' },
  )
  await app.listen({ port: 0, host: '127.0.0.1' })
  const closed = { done: false }
  teardown.push(async () => {
    hold.release()
    if (closed.done) return
    for (const socket of sockets) socket.disconnect()
    await app.close()
  })
  const { port } = app.server.address() as { port: number }
  const base = `http://127.0.0.1:${port}`
  if (!server) throw new Error('no parley')
  const parleyServer = server
  return {
    app,
    base,
    sockets,
    heard,
    hold,
    server: parleyServer,
    /** Begins the instance's close (the test then waits for it itself). */
    close: () => {
      closed.done = true
      const done = app.close()
      teardown.push(() => done)
      return done
    },
  }
}

type Tenant = Awaited<ReturnType<typeof underTenant>>

/** A client of the tenant `acme`, closed after the test. */
async function acmeClient(t: Tenant, name: 'sse' | 'polling', firstGetAfter?: Promise<unknown>) {
  const client = await rawConnect(name, `${t.base}/acme/parley`, {}, firstGetAfter && { firstGetAfter })
  teardown.push(() => client.close())
  await until(() => t.sockets.length === 1, 3000, 'the session')
  return client
}

/** The answer to `method` of `sid` at the tenant `globex`'s endpoint `segment`. */
function atGlobex(t: Tenant, segment: string, method: string, sid: string, body = ''): Promise<Answer> {
  const url = `${t.base}/globex/parley/${segment}?v=1&sid=${encodeURIComponent(sid)}`
  return within(
    exchange(url, method, { 'content-type': 'text/plain' }, body),
    5000,
    `the ${method} of /${segment} at globex`,
  )
}

/** What a client tells apart: status, code and message. */
const seen = (answer: Answer) => [answer.status, answer.body.code, answer.body.message]

/**
 * Expects the answer for `client`'s sid at globex to be that for a sid of no session, and to be
 * counted as it is (`unknownSessionCount`).
 */
async function expectUnknown(t: Tenant, segment: string, method: string, client: RawClient, body = '') {
  const before = t.server.unknownSessionCount
  const other = await atGlobex(t, segment, method, client.sid, body)
  const between = t.server.unknownSessionCount
  const none = await atGlobex(t, segment, method, NONE, body)
  const counted = [between - before, t.server.unknownSessionCount - between]
  expect([method, segment, ...seen(other), counted[0]]).toEqual([method, segment, ...seen(none), counted[1]])
}

/** The acme session is as it was: connected, on `name`, no event of globex heard. */
function expectUntouched(t: Tenant, name: 'sse' | 'polling') {
  expect(t.sockets[0]?.connected).toBe(true)
  expect(t.sockets[0]?.transport).toBe(name)
  expect(t.heard).toEqual([])
}

describe.each([
  ['sse', 'sse'],
  ['polling', 'poll'],
] as const)('a live session of acme (%s), named at globex', (name, segment) => {
  it.each([
    ['a GET', 'GET', ''],
    ['a POST of an event', 'POST', EVENT],
    ['a goodbye', 'POST', GOODBYE],
    ['a POST past maxPayload', 'POST', TOO_LARGE],
  ])('%s gets what a sid of no session gets, and the session goes on', async (_what, method, body) => {
    const t = await underTenant()
    const client = await acmeClient(t, name)
    await expectUnknown(t, segment, method, client, body)
    expectUntouched(t, name)
  })

  it('a GET while the instance closes gets what a sid of no session gets, and the session waits for its own', async () => {
    const t = await underTenant()
    const client = await acmeClient(t, name)
    // An event held in the middleware: the close waits for it, the session live meanwhile.
    await client.send({ type: PacketType.EVENT, seq: 1, name: 'hold', args: [], ackId: 0 })
    await until(() => t.hold.held === 1, 5000, 'the event to wait in the middleware')
    const closing = t.close()
    await until(() => t.server.closing, 5000, 'the instance to begin its close')
    for (const [method, body] of [
      ['GET', ''],
      ['POST', EVENT],
      ['POST', TOO_LARGE],
    ] as const) {
      await expectUnknown(t, segment, method, client, body)
    }
    expect(t.heard).toEqual([])
    t.hold.release()
    await within(closing, 5000, 'the instance to close')
  })
})

describe('a live session of acme, SSE left out of `transports`', () => {
  it('a POST marked as a relayed goodbye to /sse at globex gets what a sid of no session gets, open and closing', async () => {
    const t = await underTenant(['websocket', 'polling'])
    const client = await acmeClient(t, 'polling')
    /** The answer to such a POST of `sid`, and how many it counted as naming no session. */
    const goodbye = async (sid: string) => {
      const before = t.server.unknownSessionCount
      const url = `${t.base}/globex/parley/sse?v=1&sid=${encodeURIComponent(sid)}`
      const headers = { 'content-type': 'text/plain', 'x-parley-routed': 'goodbye' }
      const answer = await within(exchange(url, 'POST', headers, GOODBYE), 5000, 'the POST at globex')
      return [...seen(answer), t.server.unknownSessionCount - before]
    }
    expect(await goodbye(client.sid)).toEqual(await goodbye(NONE))
    // An event held in the middleware: the close waits for it, the session live meanwhile.
    await client.send({ type: PacketType.EVENT, seq: 1, name: 'hold', args: [], ackId: 0 })
    await until(() => t.hold.held === 1, 5000, 'the event to wait in the middleware')
    const closing = t.close()
    await until(() => t.server.closing, 5000, 'the instance to begin its close')
    expect(await goodbye(client.sid)).toEqual(await goodbye(NONE))
    expect(t.sockets[0]?.connected).toBe(true)
    t.hold.release()
    await within(closing, 5000, 'the instance to close')
  })
})

describe.each(['websocket', 'sse', 'polling'] as const)('a resume at globex (%s)', (transport) => {
  it("of acme's live session: a new session, counted as one naming no session", async () => {
    const t = await underTenant()
    const client = await acmeClient(t, 'polling')
    /** The resume of `sid` under globex: whether it recovered, whether it kept the sid, and how many it counted. */
    const resume = async (sid: string) => {
      const before = t.server.unknownSessionCount
      const resumed = await within(
        rawConnect(transport, `${t.base}/globex/parley`, { sid, ack: 0 }),
        5000,
        'the resume at globex',
      )
      teardown.push(() => resumed.close())
      return [resumed.open.recovered, resumed.sid === sid, t.server.unknownSessionCount - before]
    }
    expect(await resume(client.sid)).toEqual(await resume(NONE))
    expectUntouched(t, 'polling')
  })
})

describe.each([
  ['sse', 'sse'],
  ['polling', 'poll'],
] as const)('a session of acme (%s) that ended', (name, segment) => {
  it('between two GETs: its last words are not given at globex, which gets what a sid of no session gets', async () => {
    const t = await underTenant()
    let firstGet = () => {}
    const gate = new Promise<void>((resolve) => {
      firstGet = resolve
    })
    const client = await acmeClient(t, name, gate)
    t.sockets[0]?.disconnect()
    for (const method of ['GET', 'POST'] as const) {
      await expectUnknown(t, segment, method, client, method === 'POST' ? EVENT : '')
    }
    firstGet()
    const close = await client.next((p) => p.type === PacketType.CLOSE, 5000)
    expect(close).toMatchObject({ type: PacketType.CLOSE, reason: 'server disconnect' })
  })

  it('and whose last words were taken: globex gets what a sid of no session gets', async () => {
    const t = await underTenant()
    const client = await acmeClient(t, name)
    t.sockets[0]?.disconnect()
    await client.next((p) => p.type === PacketType.CLOSE, 5000)
    // Its own last GET (a polling client's, answered 400) is over: not counted with globex's.
    await within(client.ended, 5000, 'the client to stop')
    for (const method of ['GET', 'POST'] as const) {
      await expectUnknown(t, segment, method, client, method === 'POST' ? EVENT : '')
    }
  })

  it('and whose last words were taken: a GET at acme is answered and counted as naming no session', async () => {
    const t = await underTenant()
    const client = await acmeClient(t, name)
    t.sockets[0]?.disconnect()
    await client.next((p) => p.type === PacketType.CLOSE, 5000)
    await within(client.ended, 5000, 'the client to stop')
    const before = t.server.unknownSessionCount
    const url = `${t.base}/acme/parley/${segment}?v=1&sid=${encodeURIComponent(client.sid)}`
    const answer = await within(exchange(url, 'GET', {}), 5000, 'the GET at acme')
    expect([...seen(answer), t.server.unknownSessionCount - before]).toEqual([
      400,
      'PARLEY_UNKNOWN_SESSION',
      'no such session',
      1,
    ])
  })

  it('at close, its last words waiting: globex gets what a sid of no session gets, its own client its CLOSE', async () => {
    const t = await underTenant()
    let firstGet = () => {}
    const gate = new Promise<void>((resolve) => {
      firstGet = resolve
    })
    const client = await acmeClient(t, name, gate)
    const closing = t.close()
    await until(() => t.server.closed, 5000, 'the server to close')
    const other = await atGlobex(t, segment, 'GET', client.sid)
    const none = await atGlobex(t, segment, 'GET', NONE)
    expect(seen(other)).toEqual(seen(none))
    firstGet()
    const close = await client.next((p) => p.type === PacketType.CLOSE, 5000)
    expect(close).toMatchObject({ type: PacketType.CLOSE, reason: 'server shutdown' })
    await within(closing, 5000, 'the instance to close')
  })
})
