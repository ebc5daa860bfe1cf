// A relayed WebSocket's goodbye that crosses the CLOSE 'server handoff' of its draining node goes
// to that node by POST (see relayed-goodbye.test.ts). With Parley under a Fastify prefix, with a
// parameter (`/:tenant`) or without, the POST goes to the endpoint under the prefix the client's
// upgrade came by, its tenant included: the session ends there with 'client disconnect', rather
// than wait, handed off, for a claim that never comes.
import { encodeText, PacketType } from '@parley/protocol'
import { redisAdapter } from '@parley/redis'
import parley, { type ParleyServer } from '@parley/server'
import Fastify, { type FastifyInstance } from 'fastify'
import { describe, expect, it, onTestFinished } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { closeApp, until, within } from '../../server/test/helpers.js'
import { rawConnect } from '../../server/test/raw-client.js'
import { goodbyeAtClose, RawWebSocket } from '../../server/test/raw-websocket.js'
import { connectedClient, type SuiteNode } from './e2e-suite.js'
import { redisSuite } from './nodes.js'

/** Longer than every bound below: a drain that waited for a claim would outlast them. */
const HANDOFF_TIMEOUT = 7000

const GOODBYE = encodeText({ type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' })

interface PrefixedNode {
  app: FastifyInstance
  parley: ParleyServer
  redis: SuiteNode['redis']
  port: number
  /** The `disconnect` reason of each socket of this node. */
  reasons: string[]
}

describe.skipIf(skipRedisSuites())('a relayed WebSocket’s goodbye under a Fastify prefix, over Redis', () => {
  const suite = redisSuite(() => undefined)

  /** A node with Parley under `prefix`, with handoff (`a`) or without (the relay). */
  async function startNode(prefix: string, handoff: boolean): Promise<PrefixedNode> {
    const redis = await connectedClient(suite.redis.url)
    const app = Fastify({ forceCloseConnections: true })
    const reasons: string[] = []
    let server: ParleyServer | undefined
    await app.register(
      async (context) => {
        await context.register(parley, {
          adapter: redisAdapter({ client: redis, heartbeatInterval: 300 }),
          handoff: handoff && { timeout: HANDOFF_TIMEOUT, retrySpread: 0 },
        })
        server = context.parley
        const heard = (socket: { on(event: 'disconnect', listener: (reason: string) => void): unknown }) =>
          socket.on('disconnect', (reason) => reasons.push(reason))
        server.on('connection', heard)
        server.on('restored', heard)
      },
      { prefix },
    )
    await app.listen({ port: 0, host: '127.0.0.1' })
    onTestFinished(async () => {
      await closeApp(app)
      if (redis.isOpen) redis.destroy()
    })
    const { port } = app.server.address() as { port: number }
    return { app, parley: server!, redis, port, reasons }
  }

  it.each([
    ['under a prefix with a parameter', '/:tenant', '/acme'],
    ['under a prefix without one', '/api', '/api'],
    ['under no prefix', '', ''],
  ])('ends the session on its node, %s', async (_, prefix, served) => {
    const a = await startNode(prefix, true)
    const relay = await startNode(prefix, false)
    const at = (node: PrefixedNode) => `http://127.0.0.1:${node.port}${served}/parley`
    await until(() => (a.parley.adapter.otherNodes?.() ?? 0) > 0, 3000, 'another node alive')
    const first = await rawConnect('websocket', at(a))
    first.close()
    const hello = JSON.stringify([PacketType.HELLO, { sid: first.sid, ack: 0 }])
    const { ws, packets } = await RawWebSocket.open(at(relay), hello)
    onTestFinished(() => ws.terminate())
    await until(() => packets.some((p) => p.type === PacketType.OPEN), 3000, 'OPEN through the relay')
    expect(packets.find((p) => p.type === PacketType.OPEN)).toMatchObject({ sid: first.sid, recovered: true })
    expect(relay.parley.socketsCount).toBe(0)

    const sentWhileOpen = goodbyeAtClose(ws, GOODBYE)
    const closed = a.app.close()
    await until(() => packets.some((p) => p.type === PacketType.CLOSE), 3000, 'the CLOSE server handoff')
    expect(packets.find((p) => p.type === PacketType.CLOSE)).toMatchObject({ reason: 'server handoff' })
    expect(sentWhileOpen()).toBe(true)
    await until(() => a.reasons.length > 0, 3000, 'the session ended on its node')
    expect(a.reasons).toEqual(['client disconnect'])
    await within(closed, HANDOFF_TIMEOUT - 2000, 'the drain over, before its handoff timeout')
    expect(await a.redis.keys('*:handoff:*')).toEqual([])
  })
})
