// A client's goodbye (its CLOSE) in an upstream POST (SSE, polling) that reaches its session while
// the node drains and has frozen it to hand it off: in a body still coming when the drain froze
// the session, whether the snapshot is still being stored or stored already, or in a POST made
// after the freeze; or in a WebSocket message read after the freeze, before or after the CLOSE
// 'server handoff' went out, on the node's own WebSocket or through another node's relay. A client that said goodbye resumes nowhere: the session ends on its
// node ('client disconnect', as for a goodbye heard at any other time), its snapshot is withdrawn
// so that no node can claim it, and the drain does not wait for a claim that would never come.
import http, { type RequestOptions, request } from 'node:http'
import { connect, type Socket } from '@parley/client'
import {
  decodeText,
  encodeText,
  type OpenPacket,
  type Packet,
  PacketType,
  WS_SUBPROTOCOL,
} from '@parley/protocol'
import { afterEach, describe, expect, it, vi } from 'vitest'
import WebSocket from 'ws'
import { type RoundRobinProxy, startRoundRobin } from '../../../test/support/round-robin.js'
import { Cluster } from './cluster-adapter.js'
import { closeApp, type Started, startServer, until, within } from './helpers.js'
import { type RawClient, rawConnect } from './raw-client.js'
import { goodbyeAtClose, relayedResume } from './raw-websocket.js'

/** Long enough that a drain waiting for a claim would outlast every bound below. */
const HANDOFF_TIMEOUT = 7500

const GOODBYE = encodeText({ type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' })
/** An event the client sends after the freeze: the next node's to run, not this one's. */
const AFTER = encodeText({ type: PacketType.EVENT, seq: 1, name: 'after', args: [], ackId: 0 })

let nodes: Started[] = []
const clients: RawClient[] = []
const sockets: WebSocket[] = []
const parleyClients: Socket[] = []
/** Lets the store of the test's nodes finish the write it holds (see `twoNodes`). */
let finishStore = () => {}
let proxy: RoundRobinProxy | undefined

afterEach(async () => {
  vi.restoreAllMocks()
  finishStore()
  for (const c of clients.splice(0)) c.close()
  for (const ws of sockets.splice(0)) ws.terminate()
  for (const c of parleyClients.splice(0)) c.disconnect()
  await proxy?.close()
  proxy = undefined
  await Promise.all(nodes.map((n) => closeApp(n.app)))
  nodes = []
})

/**
 * Two nodes joined by the test adapter, whose store finishes storing a handed-off session only
 * once the test says so (`finishStore`): the session stays frozen, its store under way, meanwhile.
 */
async function twoNodes(return503OnClosing = false) {
  const cluster = new Cluster({ handoff: true })
  cluster.storeFinishesAfter = new Promise((resolve) => {
    finishStore = resolve
  })
  const reasons: string[][] = []
  const heardOnA: string[] = []
  for (const _ of ['a', 'b']) {
    const own: string[] = []
    const heard = nodes.length === 0 ? heardOnA : []
    const started = await startServer(
      {
        adapter: cluster.adapter(`node${nodes.length}`),
        handoff: { timeout: HANDOFF_TIMEOUT, retrySpread: 0 },
      },
      (app) => {
        app.parley.on('connection', (socket) => {
          socket.on('disconnect', (reason) => own.push(reason))
          socket.on('after', () => heard.push('after'))
        })
      },
      // A draining node still answers its sessions' requests (through its routes; through the
      // plugin's own answers at close, when Fastify refuses every request meanwhile).
      { return503OnClosing },
    )
    nodes.push(started)
    reasons.push(own)
  }
  return { cluster, a: nodes[0]!, b: nodes[1]!, reasonsOnA: reasons[0]!, heardOnA }
}

/** A POST on `url` whose body the test writes in parts (chunked), and its answer's status. */
function postInParts(url: string) {
  const post = request(new URL(url), { method: 'POST', headers: { 'content-type': 'text/plain' } })
  const status = new Promise<number>((resolve, reject) => {
    post.on('response', (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    post.on('error', reject)
  })
  return { post, status }
}

/** Starts node `a`'s drain and waits until it froze `sid` (its store began). */
async function freeze(cluster: Cluster, a: Started, sid: string): Promise<{ closed: Promise<void> }> {
  const closed = a.app.close()
  await until(() => cluster.handoffs.get(sid)?.stored === false, 3000, 'the session frozen')
  return { closed }
}

/** The goodbye counted: the session ended as its client said, nothing of it left to claim. */
async function endedByGoodbye(cluster: Cluster, reasonsOnA: string[], sid: string, closed: Promise<void>) {
  await until(() => reasonsOnA.length > 0, 3000, 'the session ended on its node')
  expect(reasonsOnA).toEqual(['client disconnect'])
  finishStore()
  await until(() => !cluster.handoffs.has(sid), 3000, 'the snapshot withdrawn')
  // The drain waits for no claim of it.
  await within(closed, 6000, 'the drain over, before its handoff timeout')
  expect(cluster.withdrawals).toBeGreaterThan(0)
}

describe.each(['sse', 'polling'] as const)(
  'a goodbye while the drain has frozen the session (%s)',
  (transport) => {
    const endpoint = (base: string, sid: string) =>
      `${base}/${transport === 'sse' ? 'sse' : 'poll'}?v=1&sid=${sid}`

    /**
     * Client of node `a`, with a POST of its whose body has begun (half its goodbye): the server
     * reads it for the live session, as a second POST's refusal shows.
     */
    async function goodbyeBegun(a: Started) {
      const client = await rawConnect(transport, a.base)
      clients.push(client)
      const goodbye = postInParts(endpoint(a.base, client.sid))
      goodbye.post.write(GOODBYE.slice(0, 5))
      const second = await fetch(endpoint(a.base, client.sid), { method: 'POST', body: '[3]' })
      expect(await second.json()).toMatchObject({ code: 'PARLEY_REQUEST_IN_PROGRESS' })
      return { client, ...goodbye }
    }

    it('ends the session when the body completes while the snapshot is being stored', async () => {
      const { cluster, a, reasonsOnA } = await twoNodes()
      const { client, post, status } = await goodbyeBegun(a)
      const { closed } = await freeze(cluster, a, client.sid)
      post.end(GOODBYE.slice(5))
      expect(await status).toBe(204)
      await endedByGoodbye(cluster, reasonsOnA, client.sid, closed)
    })

    it('ends the session when the body completes once the snapshot is stored, its CLOSE waiting for the next GET', async () => {
      const { cluster, a, reasonsOnA } = await twoNodes()
      const { client, post, status } = await goodbyeBegun(a)
      const { closed } = await freeze(cluster, a, client.sid)
      finishStore()
      await until(() => cluster.handoffs.get(client.sid)?.stored === true, 3000, 'the session stored')
      post.end(GOODBYE.slice(5))
      expect(await status).toBe(204)
      await endedByGoodbye(cluster, reasonsOnA, client.sid, closed)
    })

    it.each([
      ['', false],
      [' while Fastify refuses requests', true],
    ])('ends the session on a goodbye POST made after the freeze%s', async (_, refusing) => {
      const { cluster, a, reasonsOnA } = await twoNodes(refusing)
      const client = await rawConnect(transport, a.base)
      clients.push(client)
      const { closed } = await freeze(cluster, a, client.sid)
      const answer = await fetch(endpoint(a.base, client.sid), { method: 'POST', body: GOODBYE })
      expect(answer.status).toBe(204)
      await endedByGoodbye(cluster, reasonsOnA, client.sid, closed)
    })
  },
)

// Over WebSocket the frame comes to the transport the freeze stopped reading, not to an endpoint
// that finds the session by its id: the goodbye alone is still read, and nothing else.
describe('a goodbye while the drain has frozen the session (websocket)', () => {
  it('ends the session on a goodbye frame while the snapshot is being stored, leaving the event before it', async () => {
    const { cluster, a, reasonsOnA, heardOnA } = await twoNodes()
    const client = await rawConnect('websocket', a.base)
    clients.push(client)
    const { closed } = await freeze(cluster, a, client.sid)
    await client.sendRaw(AFTER)
    await client.sendRaw(GOODBYE)
    await endedByGoodbye(cluster, reasonsOnA, client.sid, closed)
    // The event is the next node's: neither run here nor acknowledged.
    expect(heardOnA).toEqual([])
    expect(client.received.filter((p) => p.type === PacketType.ACK)).toEqual([])
  })

  it('ends the session on a goodbye that crossed the CLOSE server handoff', async () => {
    const { cluster, a, reasonsOnA } = await twoNodes()
    const ws = new WebSocket(`${a.base.replace(/^http/, 'ws')}/ws?v=1`, WS_SUBPROTOCOL)
    sockets.push(ws)
    const packets: Packet[] = []
    // Sent as the CLOSE 'server handoff' is read, before the close frame behind it: the server
    // closed the transport already, and reads it during the closing handshake.
    let sentWhileOpen = false
    ws.on('message', (data) => {
      const decoded = decodeText(String(data), { maxPayload: 1e6 })
      if (!decoded.ok) return
      packets.push(decoded.packet)
      if (decoded.packet.type !== PacketType.CLOSE) return
      sentWhileOpen = ws.readyState === ws.OPEN
      ws.send(GOODBYE)
    })
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject))
    ws.send(JSON.stringify([PacketType.HELLO, {}]))
    await until(() => packets.some((p) => p.type === PacketType.OPEN), 3000, 'OPEN')
    const sid = (packets.find((p) => p.type === PacketType.OPEN) as OpenPacket).sid
    const { closed } = await freeze(cluster, a, sid)
    finishStore()
    await until(() => packets.some((p) => p.type === PacketType.CLOSE), 3000, 'the CLOSE server handoff')
    expect(packets.find((p) => p.type === PacketType.CLOSE)).toMatchObject({ reason: 'server handoff' })
    expect(sentWhileOpen).toBe(true)
    await endedByGoodbye(cluster, reasonsOnA, sid, closed)
  })

  it("ends the session on the Parley client's disconnect() after the freeze", async () => {
    const { cluster, a, reasonsOnA } = await twoNodes()
    const socket = connect(a.base, { transports: ['websocket'] })
    parleyClients.push(socket)
    await until(() => socket.connected, 3000, 'connect')
    const closed = a.app.close()
    await until(() => cluster.handoffs.size > 0, 3000, 'the session frozen')
    const [sid] = cluster.handoffs.keys()
    socket.disconnect()
    await endedByGoodbye(cluster, reasonsOnA, sid!, closed)
  })
})

// A WebSocket relayed by another node to the session's node (the owner did not hand the session
// over to the node the resume reached): the goodbye goes through the relay, and one that crossed
// the CLOSE 'server handoff' meets a relay whose side to the owner is closing already.
/** A session of node `a`, its WebSocket resumed on node `b`, which relays it to `a`. */
async function relayedSession(cluster: Cluster, a: Started, b: Started) {
  const first = await rawConnect('websocket', a.base)
  first.close()
  const { ws, packets } = await relayedResume(cluster, b.base, first.sid)
  sockets.push(ws)
  expect(packets.find((p) => p.type === PacketType.OPEN)).toMatchObject({ sid: first.sid, recovered: true })
  expect(cluster.handOffRequests).toBe(1)
  // Relayed, not moved: the session is still `a`'s.
  expect(a.app.parley.sessionFor(first.sid)).toBeDefined()
  expect(b.app.parley.sessionFor(first.sid)).toBeUndefined()
  return { sid: first.sid, ws, packets }
}

describe('a goodbye while the drain has frozen a relayed session (websocket)', () => {
  it('ends the session on a goodbye frame while the snapshot is being stored, leaving the event before it', async () => {
    const { cluster, a, b, reasonsOnA, heardOnA } = await twoNodes()
    const { sid, ws, packets } = await relayedSession(cluster, a, b)
    const { closed } = await freeze(cluster, a, sid)
    ws.send(AFTER)
    ws.send(GOODBYE)
    await endedByGoodbye(cluster, reasonsOnA, sid, closed)
    expect(heardOnA).toEqual([])
    expect(packets.filter((p) => p.type === PacketType.ACK)).toEqual([])
  })

  it('ends the session on a goodbye that crossed the CLOSE server handoff', async () => {
    const { cluster, a, b, reasonsOnA } = await twoNodes()
    const { sid, ws, packets } = await relayedSession(cluster, a, b)
    const sentWhileOpen = goodbyeAtClose(ws, GOODBYE)
    const { closed } = await freeze(cluster, a, sid)
    finishStore()
    await until(() => packets.some((p) => p.type === PacketType.CLOSE), 3000, 'the CLOSE server handoff')
    expect(packets.find((p) => p.type === PacketType.CLOSE)).toMatchObject({ reason: 'server handoff' })
    expect(sentWhileOpen()).toBe(true)
    await endedByGoodbye(cluster, reasonsOnA, sid, closed)
  })

  it('sends the owner one goodbye however many cross the CLOSE server handoff', async () => {
    // Until its close frame, the client may send what it likes: each goodbye past the first would
    // be one more request from the relay to the owner.
    const { cluster, a, b, reasonsOnA } = await twoNodes()
    const { sid, ws, packets } = await relayedSession(cluster, a, b)
    // The relay's requests, counted as it makes them (the owner, closing, may take only the first).
    const made = vi.spyOn(http, 'request')
    const posts = () =>
      made.mock.calls.filter(([options]) => {
        const { method, path } = options as RequestOptions
        return method === 'POST' && path?.includes(`sid=${sid}`)
      }).length
    ws.on('message', (data) => {
      const decoded = decodeText(String(data), { maxPayload: 1e6 })
      if (!decoded.ok || decoded.packet.type !== PacketType.CLOSE) return
      for (let i = 0; i < 20; i++) ws.send(GOODBYE)
    })
    const { closed } = await freeze(cluster, a, sid)
    finishStore()
    await until(() => packets.some((p) => p.type === PacketType.CLOSE), 3000, 'the CLOSE server handoff')
    await endedByGoodbye(cluster, reasonsOnA, sid, closed)
    expect(posts()).toBe(1)
  })

  it("ends the session on the Parley client's disconnect() after the freeze", async () => {
    const { cluster, a, b, reasonsOnA } = await twoNodes()
    proxy = await startRoundRobin([a, b].map((node) => Number(new URL(node.base).port)))
    proxy.avoid.add(1)
    const socket = connect(`${proxy.url}/parley`, { transports: ['websocket'] })
    parleyClients.push(socket)
    await until(() => socket.connected, 3000, 'connect')
    // Cut, the client resumes on `b`, which relays it to `a`: `a` does not answer its request.
    cluster.unreachable.add('node0')
    proxy.avoid.clear()
    proxy.avoid.add(0)
    proxy.cut()
    await until(() => cluster.handOffRequests === 1 && socket.connected, 5000, 'resumed through the relay')
    cluster.unreachable.clear()
    expect(socket.recovered).toBe(true)
    expect(a.app.parley.socketsCount).toBe(1)
    expect(b.app.parley.socketsCount).toBe(0)
    const closed = a.app.close()
    await until(() => cluster.handoffs.size > 0, 3000, 'the session frozen')
    const [sid] = cluster.handoffs.keys()
    socket.disconnect()
    await endedByGoodbye(cluster, reasonsOnA, sid!, closed)
  })
})

// The node that relays the WebSocket closes, its session's node staying up: it ends the relay with
// CLOSE 'server handoff', and closes its side to the owner, where the session waits for its
// client's resume. A goodbye that crossed that CLOSE reaches the relay once its forwarding has
// closed; dropped there, the session waited on its node for its whole recovery window.
describe('a goodbye that crosses the close of the node relaying its WebSocket', () => {
  it('ends the session on its node, which stays up', async () => {
    const { cluster, a, b, reasonsOnA } = await twoNodes()
    const { sid, ws, packets } = await relayedSession(cluster, a, b)
    const sentWhileOpen = goodbyeAtClose(ws, GOODBYE)
    const closing = b.app.close()
    await until(() => packets.some((p) => p.type === PacketType.CLOSE), 3000, 'the CLOSE server handoff')
    expect(packets.find((p) => p.type === PacketType.CLOSE)).toMatchObject({ reason: 'server handoff' })
    expect(sentWhileOpen()).toBe(true)
    await until(() => reasonsOnA.length > 0, 3000, 'the session ended on its node')
    await within(closing, 5000, 'the relaying node closed')

    expect(reasonsOnA).toEqual(['client disconnect'])
    expect(a.app.parley.sessionFor(sid)).toBeUndefined()
  })
})
