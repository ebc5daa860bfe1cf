// A node whose address has a path: a proxy serves it under `/node-a`, stripped on the way (as
// `location /node-a/ { proxy_pass http://node-a/; }` does), and the node publishes
// `http://proxy/node-a`. The address is the node's base URL: what another node sends it goes
// under that path, whatever it is (SSE, polling, a goodbye, a relayed WebSocket, a relayed
// client's late goodbye). A WebSocket relay kept the path; HTTP forwarding and the late goodbye
// dropped it, and reached the proxy's 404.
import { encodeText, PacketType } from '@parley/protocol'
import type { ServerSocket } from '@parley/server'
import { afterEach, describe, expect, it } from 'vitest'
import type WebSocket from 'ws'
import { type RoundRobinProxy, startRoundRobin } from '../../../test/support/round-robin.js'
import { Cluster } from './cluster-adapter.js'
import { closeApp, type Started, startServer, until, within } from './helpers.js'
import { type RawClient, rawConnect } from './raw-client.js'
import { head, RawHttp } from './raw-http.js'
import { goodbyeAtClose, relayedResume } from './raw-websocket.js'

const GOODBYE = encodeText({ type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' })

let nodes: Started[] = []
let proxy: RoundRobinProxy | undefined
const clients: RawClient[] = []
const sockets: WebSocket[] = []
const raws: RawHttp[] = []

afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  for (const raw of raws.splice(0)) raw.destroy()
  for (const ws of sockets.splice(0)) ws.terminate()
  await proxy?.close()
  proxy = undefined
  await Promise.all(nodes.map((n) => closeApp(n.app)))
  nodes = []
})

/**
 * Node `a` (`node0`), published at `<proxy>/node-a`, behind a proxy that serves it under that path
 * alone; node `b` (`node1`), that forwards to it. `onA`: the sockets of `a` and their disconnect
 * reasons.
 */
async function twoNodes() {
  // With handoff, the test adapter names an owner's URL, so that it is forwarded to over the network.
  const cluster = new Cluster({ handoff: true })
  const onA = { sockets: [] as ServerSocket[], reasons: [] as string[] }
  const a = await startServer({ adapter: cluster.adapter('node0'), handoff: { timeout: 500 } }, (app) => {
    app.parley.on('connection', (socket) => {
      onA.sockets.push(socket)
      socket.on('disconnect', (reason) => onA.reasons.push(reason))
    })
  })
  nodes.push(a)
  proxy = await startRoundRobin([Number(new URL(a.base).port)], { prefix: '/node-a' })
  cluster.addresses.set('node0', `${proxy.url}/node-a`)
  const b = await startServer({ adapter: cluster.adapter('node1') })
  nodes.push(b)
  return { cluster, a, b, onA, proxy }
}

/** A session of node `a`, opened over WebSocket and left to resume. */
async function sessionOn(a: Started, onA: { sockets: ServerSocket[] }): Promise<string> {
  const first = await rawConnect('websocket', a.base)
  first.close()
  await until(() => onA.sockets.length === 1, 3000, 'the session on a')
  return first.sid
}

describe.each(['sse', 'polling'] as const)(
  'a session of a node behind a path, over %s through another node',
  (transport) => {
    it('is resumed, served and ended through the path of its address', async () => {
      const { a, b, onA, proxy } = await twoNodes()
      const sid = await sessionOn(a, onA)

      const client = await rawConnect(transport, b.base, { sid, ack: 0 })
      clients.push(client)
      expect(client.open).toMatchObject({ sid, recovered: true })
      expect(b.app.parley.socketsCount).toBe(0)
      onA.sockets[0]!.emit('news', 'through the path')
      expect(await client.next((p) => p.type === PacketType.EVENT)).toMatchObject({
        args: ['through the path'],
      })
      expect(await client.sendRaw(GOODBYE)).toBe(204)
      await until(() => onA.reasons.length > 0, 3000, 'the session ended on its node')
      expect(onA.reasons).toEqual(['client disconnect'])
      // Every request went through the proxy's path: none of them got its 404.
      expect(proxy.forwarded[0]).toBeGreaterThanOrEqual(3)
    })
  },
)

// Node and the router take a request target in absolute form (RFC 9112 3.2.2): sent on as it
// came, it followed the address's path (`/node-ahttp://...`), and met the proxy's 404.
describe('a POST in absolute form of a session of a node behind a path, through another node', () => {
  it('goes through the path of its address', async () => {
    const { a, b, onA } = await twoNodes()
    const client = await rawConnect('polling', a.base)
    clients.push(client)
    await until(() => onA.sockets.length === 1, 3000, 'the session on a')
    const raw = await RawHttp.open(Number(new URL(b.base).port))
    raws.push(raw)
    const target = `http://127.0.0.1/parley/poll?v=1&sid=${client.sid}`
    raw.write(head('POST', target, { 'Content-Length': String(Buffer.byteLength(GOODBYE)) }) + GOODBYE)
    expect((await raw.answer()).status).toBe(204)
    await until(() => onA.reasons.length > 0, 3000, 'the session ended on its node')
    expect(onA.reasons).toEqual(['client disconnect'])
  })
})

describe('a WebSocket of a session of a node behind a path, resumed on another node', () => {
  /** The WebSocket resumed on `b`, relayed to `a` through the proxy, and what it received. */
  async function relayed(cluster: Cluster, a: Started, b: Started, onA: { sockets: ServerSocket[] }) {
    const sid = await sessionOn(a, onA)
    const { ws, packets } = await relayedResume(cluster, b.base, sid)
    sockets.push(ws)
    expect(packets.find((p) => p.type === PacketType.OPEN)).toMatchObject({ sid, recovered: true })
    return { ws, packets }
  }

  it('is relayed through the path of its address', async () => {
    const { cluster, a, b, onA, proxy } = await twoNodes()
    const { packets } = await relayed(cluster, a, b, onA)

    expect(proxy.upgrades[0]).toBe(1)
    onA.sockets[0]!.emit('news', 'relayed')
    await until(() => packets.some((p) => p.type === PacketType.EVENT), 3000, 'the event through the relay')
  })

  // The relaying node closes: its client's goodbye, crossing the CLOSE 'server handoff', goes to
  // the session's node as a POST of its own (relayed-goodbye.ts), under the address's path too.
  it("sends the client's late goodbye through the path of its address", async () => {
    const { cluster, a, b, onA } = await twoNodes()
    const { ws, packets } = await relayed(cluster, a, b, onA)
    const sentWhileOpen = goodbyeAtClose(ws, GOODBYE)
    const closing = b.app.close()
    await until(() => packets.some((p) => p.type === PacketType.CLOSE), 3000, 'the CLOSE server handoff')
    expect(sentWhileOpen()).toBe(true)
    await until(() => onA.reasons.length > 0, 3000, 'the session ended on its node')
    await within(closing, 5000, 'the relaying node closed')
    expect(onA.reasons).toEqual(['client disconnect'])
  })
})
