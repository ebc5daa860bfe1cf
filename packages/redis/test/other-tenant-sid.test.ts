// Two nodes on one Redis under `/:tenant`: a request at one node that names, under another
// tenant, a session of the other (live there, ended there, or handed off by its drain) gets the
// answer a sid of no session gets at that node, and leaves the session alone. The same on one
// node is packages/server/test/other-tenant-sid.test.ts.

import { createHash } from 'node:crypto'
import { encodeText, PacketType } from '@parley/protocol'
import type { RedisAdapter } from '@parley/redis'
import type { ParleyServer } from '@parley/server'
import type { FastifyInstance } from 'fastify'
import { createClient } from 'redis'
import { beforeEach, describe, expect, it, onTestFinished } from 'vitest'
import { holdPort } from '../../../test/support/ports.js'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { holding } from '../../server/test/held-events.js'
import { until, within } from '../../server/test/helpers.js'
import { type Answer, exchange } from '../../server/test/http-exchange.js'
import { Refused, rawConnect } from '../../server/test/raw-client.js'
import { redisSuite } from './nodes.js'
import { prefixedNode, seeEachOther } from './prefixed-node.js'

interface TenantNode {
  app: FastifyInstance
  parley: ParleyServer
  adapter: RedisAdapter
  base: string
}

/** A sid no session ever had: what the other tenant's answers are held to. */
const NONE = 'AAAAAAAAAAAAAAAAAAAAAA'

const EVENT = encodeText({ type: PacketType.EVENT, seq: 1, name: 'note', args: ['from globex'], ackId: 0 })
const GOODBYE = encodeText({ type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' })

/** A polling session under `acme` at node `a`, once `a` and `b` see each other; closed after the test. */
async function sessionAtAcme(a: TenantNode, b: TenantNode) {
  await seeEachOther(a, b)
  const first = await rawConnect('polling', `${a.base}/acme/parley`)
  onTestFinished(() => first.close())
  return first
}

/** Each request a test sends under globex: method, endpoint, body. */
const REQUESTS = [
  ['GET', 'poll', ''],
  ['GET', 'sse', ''],
  ['POST', 'poll', EVENT],
  ['POST', 'poll', GOODBYE],
] as const

describe.skipIf(skipRedisSuites())('nodes under /:tenant, a sid named under another tenant', () => {
  const suite = redisSuite(() => undefined)

  let tests = 0
  beforeEach(() => {
    tests++
  })

  /**
   * A node under `/:tenant` on the suite's Redis (keys of the test's own), with handoff unless
   * `noHandoff` (its drain waiting `handoffMs` for claims); its sockets hold the event `hold`
   * when `hold` is given (see `holding`); published at `address` when given (one where the others
   * cannot reach it).
   */
  async function tenantNode(
    heard: unknown[] = [],
    hold?: ReturnType<typeof holding>,
    noHandoff = false,
    address?: string,
    handoffMs = 1000,
  ): Promise<TenantNode> {
    const { app, parley, adapter, port } = await prefixedNode(suite.redis.url, '/:tenant', {
      keyPrefix: `other-tenant-${tests}`,
      ...(address !== undefined && { address }),
      handoff: noHandoff ? false : { timeout: handoffMs, retrySpread: 0 },
      serve: (server) =>
        server.on('connection', (socket) => {
          socket.on('note', (text: unknown) => void heard.push(text))
          hold?.onConnection(socket)
        }),
    })
    return { app, parley, adapter, base: `http://127.0.0.1:${port}` }
  }

  /**
   * Begins `node`'s close, held open by an event of its own client's that waits in the
   * middleware (`hold`, the node's), until the test ends.
   */
  async function closingHeld(node: TenantNode, hold: ReturnType<typeof holding>) {
    const own = await rawConnect('polling', `${node.base}/acme/parley`)
    onTestFinished(() => own.close())
    await own.send({ type: PacketType.EVENT, seq: 1, name: 'hold', args: [], ackId: 0 })
    await until(() => hold.held === 1, 5000, 'the event to wait in the middleware')
    const closing = node.app.close()
    onTestFinished(async () => {
      hold.release()
      await closing
    })
    await until(() => node.parley.closing, 5000, 'the node to begin its close')
  }

  /** The answer to `method` of `sid` at `node`'s endpoint `segment` under globex. */
  function atGlobex(node: TenantNode, method: string, segment: string, sid: string, body: string) {
    const url = `${node.base}/globex/parley/${segment}?v=1&sid=${encodeURIComponent(sid)}`
    return within(
      exchange(url, method, { 'content-type': 'text/plain' }, body),
      5000,
      `the ${method} of /${segment} at globex`,
    )
  }

  const seen = (answer: Answer) => [answer.status, answer.body.code, answer.body.message]

  /** Expects each of `REQUESTS` for `sid` at `node` to get what it gets for a sid of no session. */
  async function expectUnknown(node: TenantNode, sid: string) {
    for (const [method, segment, body] of REQUESTS) {
      const other = await atGlobex(node, method, segment, sid, body)
      const none = await atGlobex(node, method, segment, NONE, body)
      expect([method, segment, body, ...seen(other)]).toEqual([method, segment, body, ...seen(none)])
    }
  }

  it('live on the other node: answered as no session, the session goes on', async () => {
    const heard: unknown[] = []
    const a = await tenantNode(heard)
    const b = await tenantNode(heard)
    const first = await sessionAtAcme(a, b)
    await until(() => a.parley.sockets.size === 1, 5000, 'the session on its node')
    await expectUnknown(b, first.sid)
    const [own] = a.parley.sockets.values()
    expect([own?.connected, own?.transport, heard]).toEqual([true, 'polling', []])
  })

  /** What a resume of `sid` under globex at `node` over `transport` is told: a new session or not. */
  async function resumeAtGlobex(node: TenantNode, transport: 'polling' | 'websocket', sid: string) {
    const resumed = await within(
      rawConnect(transport, `${node.base}/globex/parley`, { sid, ack: 0 }),
      5000,
      `the ${transport} resume at globex`,
    )
    onTestFinished(() => resumed.close())
    return [transport, resumed.open.recovered, resumed.sid === sid]
  }

  it('live on a node the others cannot reach: answered as no session there, and never sent on', async () => {
    const nowhere = await holdPort()
    onTestFinished(() => nowhere.release())
    const a = await tenantNode([], undefined, false, `http://127.0.0.1:${nowhere.port}`)
    const b = await tenantNode()
    await seeEachOther(a, b)
    const first = await rawConnect('polling', `${a.base}/acme/parley`)
    onTestFinished(() => first.close())
    await until(() => a.parley.sockets.size === 1, 5000, 'the session on its node')
    await expectUnknown(b, first.sid)
    // Resumed under globex over HTTP and WebSocket: a new session at b, as for a sid of none.
    for (const transport of ['polling', 'websocket'] as const) {
      expect(await resumeAtGlobex(b, transport, first.sid)).toEqual(await resumeAtGlobex(b, transport, NONE))
    }
    // Sent on, each would have failed at a's address, and been counted: none was, so each was
    // answered as fast as a sid of no session.
    expect(b.parley.unreachableOwnerCount).toBe(0)
    // acme's own GET is sent there, and fails: a cannot be reached indeed. Answered 400
    // PARLEY_UNKNOWN_SESSION, it is counted with the requests naming no session too.
    const unknown = b.parley.unknownSessionCount
    const own = await exchange(`${b.base}/acme/parley/poll?v=1&sid=${first.sid}`, 'GET', {}, '')
    expect([own.status, own.body.code, b.parley.unreachableOwnerCount]).toEqual([
      400,
      'PARLEY_UNKNOWN_SESSION',
      1,
    ])
    expect(b.parley.unknownSessionCount - unknown).toBe(1)
  })

  it("keeps a session's route parameters beside its owner record; one without them, as an earlier version writes it, is sent on to its node, which answers", async () => {
    const a = await tenantNode()
    const b = await tenantNode()
    await seeEachOther(a, b)
    const first = await rawConnect('polling', `${a.base}/acme/parley`)
    onTestFinished(() => first.close())
    await until(() => a.parley.sockets.size === 1, 5000, 'the session on its node')
    const owner = await b.adapter.sessionOwner(first.sid)
    expect(owner).toMatchObject({ node: a.adapter.node, params: { tenant: 'acme' } })
    const redis = createClient({ url: suite.redis.url })
    await redis.connect()
    onTestFinished(() => redis.destroy())
    const key = `other-tenant-${tests}:params:${createHash('sha256').update(first.sid).digest('base64url')}`
    for (const stored of [undefined, 'not parameters']) {
      if (stored === undefined) await redis.del(key)
      else await redis.set(key, stored)
      // None read, not even from what does not read as parameters: the request goes to a, as
      // before, and a answers each as for a sid of no session there.
      expect(await b.adapter.sessionOwner(first.sid)).toEqual({ node: a.adapter.node, url: a.base })
      await expectUnknown(b, first.sid)
    }
    // acme's own GET is served there: its session goes on.
    const own = await exchange(`${b.base}/acme/parley/poll?v=1&sid=${first.sid}`, 'GET', {}, '')
    expect(own.status).toBe(200)
    expect(b.parley.unreachableOwnerCount).toBe(0)
  })

  it('ended on the other node: answered as no session', async () => {
    const a = await tenantNode()
    const b = await tenantNode()
    const first = await sessionAtAcme(a, b)
    await until(() => a.parley.sockets.size === 1, 5000, 'the session on its node')
    for (const socket of a.parley.sockets.values()) socket.disconnect()
    await first.next((packet) => packet.type === PacketType.CLOSE, 5000)
    await expectUnknown(b, first.sid)
  })

  it('handed off by the drain of its node: answered as no session, and its own client takes it over', async () => {
    const a = await tenantNode()
    const b = await tenantNode()
    const first = await sessionAtAcme(a, b)
    const drained = a.app.close()
    const moved = await first.next((packet) => packet.type === PacketType.CLOSE, 5000)
    expect(moved).toMatchObject({ reason: 'server handoff' })
    await within(drained, 5000, 'the drain to end')
    await expectUnknown(b, first.sid)
    // Neither its goodbye nor anything else under globex ended it: its own client resumes it.
    const own = await within(
      rawConnect('polling', `${b.base}/acme/parley`, { sid: first.sid, ack: 0 }),
      5000,
      'the resume under acme',
    )
    onTestFinished(() => own.close())
    expect([own.sid === first.sid, own.open.recovered]).toEqual([true, true])
  })

  /** The answer to a polling handshake that resumes `sid` under globex at `node`. */
  async function resumePost(node: TenantNode, sid: string) {
    const hello = JSON.stringify([PacketType.HELLO, { sid, ack: 0 }])
    const url = `${node.base}/globex/parley/poll?v=1`
    const answer = await within(
      exchange(url, 'POST', { 'content-type': 'text/plain' }, hello),
      5000,
      'the resume',
    )
    return seen(answer)
  }

  /** The same over WebSocket: OPEN (and whether it recovered), or the refusal. */
  async function resumeWs(node: TenantNode, sid: string) {
    const resumed = rawConnect('websocket', `${node.base}/globex/parley`, { sid, ack: 0 })
    return within(
      resumed.then(
        (client) => {
          onTestFinished(() => client.close())
          return ['open', client.open.recovered]
        },
        (err: unknown) => (err instanceof Refused ? [err.code, err.message] : [String(err)]),
      ),
      5000,
      'the WebSocket resume',
    )
  }

  it('handed off by the drain of the node it reaches, resumed there under another tenant: answered as a sid of no session', async () => {
    const a = await tenantNode([], undefined, false, undefined, 5000)
    const b = await tenantNode()
    const first = await sessionAtAcme(a, b)
    const drained = a.app.close()
    onTestFinished(() => drained)
    await first.next((packet) => packet.type === PacketType.CLOSE, 5000)
    await until(() => a.parley.handedOff(first.sid), 5000, 'the session handed off')
    // Sent on to b (as its own client's would be), it would get a new session there; a opens
    // none as it drains.
    expect(await resumePost(a, first.sid)).toEqual(await resumePost(a, NONE))
    expect(await resumeWs(a, first.sid)).toEqual(await resumeWs(a, NONE))
    // Still claimable by its own client.
    expect([a.parley.handedOff(first.sid), b.parley.sockets.size]).toEqual([true, 0])
  })

  it('live on the other node, resumed under another tenant at a node that closes: answered as a sid of no session', async () => {
    const a = await tenantNode()
    const hold = holding()
    const b = await tenantNode([], hold, true)
    const first = await sessionAtAcme(a, b)
    await closingHeld(b, hold)
    // Sent on to a, it would get a new session there; b opens none as it closes.
    expect(await resumePost(b, first.sid)).toEqual(await resumePost(b, NONE))
    expect(await resumeWs(b, first.sid)).toEqual(await resumeWs(b, NONE))
    expect(a.parley.sockets.size).toBe(1)
  })

  it('handed off by the drain of its node, named at a node that closes: answered as no session', async () => {
    const a = await tenantNode()
    const hold = holding()
    const b = await tenantNode([], hold, true)
    const first = await sessionAtAcme(a, b)
    const drained = a.app.close()
    await first.next((packet) => packet.type === PacketType.CLOSE, 5000)
    await within(drained, 5000, 'the drain to end')
    await closingHeld(b, hold)
    for (const [method, segment, body] of REQUESTS.filter(([, endpoint]) => endpoint === 'poll')) {
      const other = await atGlobex(b, method, segment, first.sid, body)
      const none = await atGlobex(b, method, segment, NONE, body)
      expect([method, body, ...seen(other)]).toEqual([method, body, ...seen(none)])
    }
  })
})
