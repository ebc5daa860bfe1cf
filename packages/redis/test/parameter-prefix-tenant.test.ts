// Two nodes on one Redis, each with Parley under the Fastify prefix `/:tenant`: a request of a
// session under another tenant than its own, reaching the node that does not hold it, is
// answered there as one of no session (the route parameters beside the session's owner record
// say whose it is; the tenant is the router's reading of the URL the client used); a WebSocket
// resume there does not resume it.

import { ErrorCode, PacketType, type TransportName } from '@parley/protocol'
import type { RedisAdapter } from '@parley/redis'
import type { ParleyServer } from '@parley/server'
import type { FastifyInstance } from 'fastify'
import { beforeEach, describe, expect, it, onTestFinished } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { exchange } from '../../server/test/http-exchange.js'
import { Closed, rawConnect } from '../../server/test/raw-client.js'
import { redisSuite } from './nodes.js'
import { prefixedNode, seeEachOther } from './prefixed-node.js'

interface TenantNode {
  app: FastifyInstance
  parley: ParleyServer
  adapter: RedisAdapter
  base: string
  /** The tenant of each request a node sent on here (`x-parley-routed`), in order. */
  routedTenants: string[]
}

describe.skipIf(skipRedisSuites())('nodes under /:tenant, a session of another tenant', () => {
  const suite = redisSuite(() => undefined)

  /** Each test's nodes use keys of their own in Redis (see `PrefixedNodeOptions.keyPrefix`). */
  let tests = 0
  beforeEach(() => {
    tests++
  })

  /** A node under `/:tenant`, on the suite's Redis; with `handoff`, a WebSocket resume moves its session. */
  async function tenantNode(handoff = false): Promise<TenantNode> {
    const { app, parley, adapter, port, routedTenants } = await prefixedNode(suite.redis.url, '/:tenant', {
      keyPrefix: `tenant-${tests}`,
      routed: true,
      handoff: handoff && { timeout: 1000, retrySpread: 0 },
    })
    return { app, parley, adapter, base: `http://127.0.0.1:${port}`, routedTenants }
  }

  /** A raw client's resume of `sid` at `node` under `tenant`, answered; closed at the test's end. */
  async function resumeUnder(
    node: TenantNode,
    tenant: string,
    sid: string,
    transport: TransportName = 'polling',
  ) {
    const resumed = await within(
      rawConnect(transport, `${node.base}/${tenant}/parley`, { sid, ack: 0 }),
      5000,
      `the answer to the ${transport} resume under ${tenant}`,
    )
    onTestFinished(() => resumed.close())
    return resumed
  }

  it('is answered as no session at the node it reached, never sent on, on every transport', async () => {
    const a = await tenantNode()
    const b = await tenantNode()
    await seeEachOther(a, b)
    const polling = await rawConnect('polling', `${a.base}/acme/parley`)
    onTestFinished(() => polling.close())
    const sid = encodeURIComponent(polling.sid)
    for (const [method, segment] of [
      ['GET', 'poll'],
      ['POST', 'poll'],
      ['GET', 'sse'],
    ] as const) {
      const answer = await within(
        exchange(
          `${b.base}/globex/parley/${segment}?v=1&sid=${sid}`,
          method,
          { 'content-type': 'text/plain' },
          method === 'POST' ? '[3]' : '',
        ),
        5000,
        `the answer to the ${method} of /${segment}`,
      )
      expect([method, segment, answer.status, answer.body.code, answer.body.message]).toEqual([
        method,
        segment,
        400,
        ErrorCode.UNKNOWN_SESSION,
        'no such session',
      ])
    }
    // None was sent on to the session's node: the route parameters beside its owner record say
    // it is another tenant's. (One without them, an earlier version's, is sent on and refused
    // there: see other-tenant-sid.test.ts.)
    expect(a.routedTenants).toEqual([])
    // Resumes under another tenant, reaching the other node: new sessions.
    for (const transport of ['websocket', 'sse', 'polling'] as const) {
      const resumed = await resumeUnder(b, 'globex', polling.sid, transport)
      expect([transport, resumed.sid === polling.sid, resumed.open.recovered]).toEqual([
        transport,
        false,
        false,
      ])
    }
    // The first one is still there, under its own tenant.
    const tenants = [...a.parley.sockets.values(), ...b.parley.sockets.values()].map(
      (socket) => socket.handshake.params.tenant,
    )
    expect(tenants.filter((tenant) => tenant === 'acme')).toHaveLength(1)
    // The first session goes on, at its own tenant, on its own node.
    const own = await within(
      exchange(`${b.base}/acme/parley/poll?v=1&sid=${sid}`, 'POST', { 'content-type': 'text/plain' }, '[3]'),
      5000,
      'the answer to a POST of its own tenant',
    )
    expect(own.status).toBe(204)
  })

  it('that ended on its node is not told to a resume under another tenant on another node', async () => {
    const a = await tenantNode()
    const b = await tenantNode()
    await seeEachOther(a, b)
    const first = await rawConnect('polling', `${a.base}/acme/parley`)
    onTestFinished(() => first.close())
    await until(() => a.parley.sockets.size === 1, 5000, 'the session on its node')
    for (const socket of a.parley.sockets.values()) socket.disconnect()
    first.close()
    // b knows of its end only through the record in Redis: globex learns nothing of it.
    const other = await resumeUnder(b, 'globex', first.sid)
    expect([other.sid === first.sid, other.open.recovered]).toEqual([false, false])
    const own = await within(
      rawConnect('polling', `${b.base}/acme/parley`, { sid: first.sid, ack: 0 }).then(
        () => undefined,
        (err: unknown) => err,
      ),
      5000,
      'the answer to the resume under acme',
    )
    expect(own).toBeInstanceOf(Closed)
    expect((own as Closed).packet.reason).toBe('server disconnect')
  })

  it('is not handed off for a resume under another tenant on another node, and stays its own client’s', async () => {
    const a = await tenantNode(true)
    const b = await tenantNode(true)
    await seeEachOther(a, b)
    const first = await rawConnect('websocket', `${a.base}/acme/parley`)
    onTestFinished(() => first.close())
    // b asks a to hand the session off: a says no for a resume under globex, and b relays that
    // resume to a, where it gets a new session. The session goes on, on its own WebSocket.
    const other = await resumeUnder(b, 'globex', first.sid, 'websocket')
    expect(other.sid).not.toBe(first.sid)
    expect(other.open.recovered).toBe(false)
    const params = (node: TenantNode) =>
      [...node.parley.sockets.values()].map((socket) => socket.handshake.params.tenant).sort()
    expect([...params(a), ...params(b)]).toEqual(['acme', 'globex'])
    const own = [...a.parley.sockets.values()].find((socket) => socket.handshake.params.tenant === 'acme')
    expect([own?.connected, own?.transport]).toEqual([true, 'websocket'])
    const heard = new Promise<unknown>((resolve) => own?.once('note', resolve))
    await first.send({ type: PacketType.EVENT, seq: 1, name: 'note', args: ['still here'], ackId: 0 })
    expect(await within(heard, 5000, 'the event on its own WebSocket')).toBe('still here')
  })

  it('handed off by a drain is not claimed by a resume under another tenant, and stays its own client’s', async () => {
    const a = await tenantNode(true)
    const b = await tenantNode(true)
    await seeEachOther(a, b)
    const first = await rawConnect('polling', `${a.base}/acme/parley`)
    onTestFinished(() => first.close())
    const drained = a.app.close()
    const moved = await first.next((packet) => packet.type === PacketType.CLOSE, 5000)
    expect(moved).toMatchObject({ reason: 'server handoff' })
    // Under globex, b claims nothing: a new session, and the handoff stays as it was.
    const other = await resumeUnder(b, 'globex', first.sid)
    expect([other.sid === first.sid, other.open.recovered]).toEqual([false, false])
    // Its own client takes it over.
    const own = await resumeUnder(b, 'acme', first.sid)
    expect([own.sid === first.sid, own.open.recovered]).toEqual([true, true])
    await within(drained, 5000, 'the drain to end')
    const params = [...b.parley.sockets.values()].map((socket) => socket.handshake.params.tenant).sort()
    expect(params).toEqual(['acme', 'globex'])
  })
})
