// A client's goodbye on a WebSocket that another node relays to the session's node, while that
// node drains and has frozen the session to hand it off: sent during the freeze, or crossing the
// CLOSE 'server handoff' (the relay has answered the owner's close frame by the time it comes, and
// sends it on to the owner by POST). Either way it counts as on the owner's own WebSocket: the
// session ends there with 'client disconnect', its snapshot is withdrawn from Redis, and the
// drain waits for no claim of it. Two Parley servers on one real Redis: `a` drains with handoff;
// `b`, without, relays a WebSocket resume to the session's node rather than take the session.
import { decodeFrame, encodeText, PacketType } from '@parley/protocol'
import { redisAdapter } from '@parley/redis'
import type { ParleyServerOptions } from '@parley/server'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { type Started, startServer, until, within } from '../../server/test/helpers.js'
import { rawConnect } from '../../server/test/raw-client.js'
import { goodbyeAtClose, RawWebSocket } from '../../server/test/raw-websocket.js'
import { allSeeEachOther, connectedClient, endToEndSuite, type SuiteNode } from './e2e-suite.js'

/** Longer than every bound below: a drain that waited for a claim would outlast them. */
const HANDOFF_TIMEOUT = 7000

const GOODBYE = encodeText({ type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' })

interface Node extends SuiteNode {
  /** The `disconnect` reason of each socket of this node. */
  reasons: string[]
}

describe.skipIf(skipRedisSuites())('a relayed WebSocket’s goodbye while its node drains, over Redis', () => {
  const suite = endToEndSuite<Node>()

  /** `beforeStore`: what a snapshot's store waits for, once the drain asked for it (given the node). */
  async function startNode(
    server: ParleyServerOptions,
    fastify: FastifyServerOptions = {},
    setup?: (app: FastifyInstance) => void,
    beforeStore?: (node: Node) => Promise<void>,
  ): Promise<Node> {
    const redis = await connectedClient(suite.redis.url)
    const reasons: string[] = []
    const factory = redisAdapter({ client: redis, heartbeatInterval: 300 })
    const adapter: typeof factory = (sockets) => {
      const made = factory(sockets)
      const handOff = made.handOff.bind(made)
      if (beforeStore)
        made.handOff = async (snapshot, ttl) => beforeStore(node).then(() => handOff(snapshot, ttl))
      return made
    }
    const started: Started = await startServer(
      { ...server, adapter },
      (app) => {
        const heard = (socket: { on(event: 'disconnect', listener: (reason: string) => void): unknown }) =>
          socket.on('disconnect', (reason) => reasons.push(reason))
        app.parley.on('connection', heard)
        app.parley.on('restored', heard)
        setup?.(app)
      },
      fastify,
    )
    const node = { started, redis, reasons }
    suite.nodes.push(node)
    return node
  }

  /**
   * Node `a` (with handoff), node `b` (without), and a session of `a` relayed to it by `b`; `both`:
   * options of both nodes; `fastify`: `a`'s Fastify options; `beforeStore`: what `a`'s snapshot
   * store waits for.
   */
  async function relayed(
    both: ParleyServerOptions = {},
    fastify: FastifyServerOptions = {},
    beforeStore?: (a: Node) => Promise<void>,
  ) {
    const a = await startNode(
      { ...both, handoff: { timeout: HANDOFF_TIMEOUT, retrySpread: 0 } },
      fastify,
      undefined,
      beforeStore,
    )
    const b = await startNode({ ...both, handoff: false })
    // a's drain hands the session off only once it takes b for alive; alone, it ends it at once.
    await allSeeEachOther([a, b])
    const first = await rawConnect('websocket', a.started.base)
    first.close()
    const hello = JSON.stringify([PacketType.HELLO, { sid: first.sid, ack: 0 }])
    const { ws, packets } = await RawWebSocket.open(b.started.base, hello)
    await until(() => packets.some((p) => p.type === PacketType.OPEN), 3000, 'OPEN through the relay')
    expect(packets.find((p) => p.type === PacketType.OPEN)).toMatchObject({ sid: first.sid, recovered: true })
    expect(a.started.app.parley.sessionFor(first.sid)).toBeDefined()
    expect(b.started.app.parley.socketsCount).toBe(0)
    return { a, ws, packets, sid: first.sid }
  }

  /** The goodbye counted on `a`: the session ended as its client said, nothing left in Redis. */
  async function endedByGoodbye(a: Node, closed: Promise<void>) {
    await until(() => a.reasons.length > 0, 3000, 'the session ended on its node')
    expect(a.reasons).toEqual(['client disconnect'])
    await within(closed, HANDOFF_TIMEOUT - 2000, 'the drain over, before its handoff timeout')
    expect(await a.redis.keys('*:handoff:*')).toEqual([])
  }

  it('ends the session on a goodbye sent while the session is frozen', async () => {
    // The goodbye goes when the drain asks for the snapshot's store, right after the freeze, and
    // the store waits until the session has ended: so it reaches the session frozen, before the
    // CLOSE 'server handoff' that follows the store. A freeze polled for instead was seen, on a
    // loaded machine, only once that CLOSE had closed the client's WebSocket, which then sent
    // nothing. A goodbye that is never heard lets the store go on after the wait's bound.
    let storing!: () => void
    const asked = new Promise<void>((resolve) => {
      storing = resolve
    })
    const { a, ws } = await relayed({}, {}, async (a) => {
      storing()
      await until(() => a.reasons.length > 0, 3000, 'the goodbye heard').catch(() => {})
    })
    const closed = a.started.app.close()
    await within(asked, 3000, 'the snapshot’s store')
    await until(
      () => a.started.app.parley.sockets.values().next().value?.session.state === 'frozen',
      3000,
      'the freeze',
    )
    ws.send(GOODBYE)
    await endedByGoodbye(a, closed)
    ws.terminate()
  })

  // Without SSE and polling among `transports`, the owner still hears it on its polling endpoint
  // (for a session frozen there, and a POST marked as a relayed goodbye only), whether Fastify
  // refuses requests while it closes or leaves them to the routes.
  it.each<[string, ParleyServerOptions, FastifyServerOptions]>([
    ['', {}, {}],
    [' (WebSocket alone)', { transports: ['websocket'] }, {}],
    [' (WebSocket alone, routes open)', { transports: ['websocket'] }, { return503OnClosing: false }],
  ])('ends the session on a goodbye that crossed the CLOSE server handoff%s', async (_, both, fastify) => {
    const { a, ws, packets } = await relayed(both, fastify)
    const sentWhileOpen = goodbyeAtClose(ws, GOODBYE)
    const closed = a.started.app.close()
    await until(() => packets.some((p) => p.type === PacketType.CLOSE), 3000, 'the CLOSE server handoff')
    expect(packets.find((p) => p.type === PacketType.CLOSE)).toMatchObject({ reason: 'server handoff' })
    expect(sentWhileOpen()).toBe(true)
    await endedByGoodbye(a, closed)
    ws.terminate()
  })

  // The client's WebSocket resume at `b` has `a` move the session there (MOVED on the relayed
  // WebSocket); the goodbye sent on the relayed one as the MOVED comes reaches `a`, by POST, once
  // `b`'s claim has taken the session from it (held there until then: the race pinned). `a` sends
  // it on, once, to `b`, which ends the session as its client said, whatever transport it is on
  // (here a WebSocket, the goodbye on the polling endpoint), rather than keep it for its recovery
  // window.
  it('ends the session where it moved on a goodbye that crossed the MOVED', async () => {
    const handoff = { timeout: HANDOFF_TIMEOUT, retrySpread: 0 }
    let sid = ''
    let held = 0
    const a = await startNode({ handoff }, {}, (app) => {
      app.addHook('onRequest', async (request) => {
        if (request.method !== 'POST' || request.headers['x-parley-routed'] !== 'goodbye') return
        held++
        await until(() => app.parley.sessionFor(sid) === undefined, 3000, 'b’s claim of the session')
      })
    })
    const relay = await startNode({ handoff: false })
    const b = await startNode({ handoff })
    // As in `relayed`: the three take each other for alive before the session is made.
    await allSeeEachOther([a, relay, b])
    const first = await rawConnect('websocket', a.started.base)
    first.close()
    sid = first.sid
    const hello = JSON.stringify([PacketType.HELLO, { sid, ack: 0 }])
    const relayed = await RawWebSocket.open(relay.started.base, hello)
    await until(() => relayed.packets.some((p) => p.type === PacketType.OPEN), 3000, 'OPEN through the relay')
    let saidGoodbye = false
    relayed.ws.on('message', (data: Buffer, binary: boolean) => {
      const decoded = binary ? undefined : decodeFrame(data.toString(), { maxPayload: 1e8 })
      if (saidGoodbye || !decoded?.ok || decoded.packet.type !== PacketType.MOVED) return
      saidGoodbye = true
      relayed.ws.send(GOODBYE)
    })
    const moved = await RawWebSocket.open(b.started.base, hello)
    await until(() => moved.packets.some((p) => p.type === PacketType.OPEN), 3000, 'OPEN where it moved')
    expect(moved.packets.find((p) => p.type === PacketType.OPEN)).toMatchObject({ sid, recovered: true })
    expect(saidGoodbye).toBe(true)
    await until(() => b.reasons.length > 0, 3000, 'the session ended where it moved')
    expect(b.reasons).toEqual(['client disconnect'])
    expect(held).toBe(1)
    expect(b.started.app.parley.sessionFor(sid)).toBeUndefined()
    relayed.ws.terminate()
    moved.ws.terminate()
  })
})
