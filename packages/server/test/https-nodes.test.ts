// A node whose address is `https://` (behind TLS, with a certificate of a private CA: here one
// made for the tests, in fixtures/): the other nodes forward its sessions' SSE and polling
// requests to it over `node:https`, relay its WebSockets over `wss://`, and send it a relayed
// client's late goodbye, trusting the `forwarding.ca` they are given. Over `node:http`, as
// before, every one of them failed (ERR_INVALID_PROTOCOL): the client got a new session.
import { readFileSync } from 'node:fs'
import { encodeText, PacketType } from '@parley/protocol'
import parley, { type ParleyServerOptions, type ServerSocket } from '@parley/server'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import type WebSocket from 'ws'
import { Cluster } from './cluster-adapter.js'
import { closeApp, type Started, startServer, until, within } from './helpers.js'
import { type RawClient, rawConnect } from './raw-client.js'
import { goodbyeAtClose, relayedResume } from './raw-websocket.js'

const key = readFileSync(new URL('./fixtures/node-tls.key', import.meta.url), 'utf8')
/** Self-signed, for 127.0.0.1: its own CA. */
const cert = readFileSync(new URL('./fixtures/node-tls.crt', import.meta.url), 'utf8')

const GOODBYE = encodeText({ type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' })

let apps: FastifyInstance[] = []
const clients: RawClient[] = []
const sockets: WebSocket[] = []

afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  for (const ws of sockets.splice(0)) ws.terminate()
  await Promise.all(apps.map((app) => closeApp(app)))
  apps = []
})

interface HttpsNode {
  app: FastifyInstance
  /** `https://127.0.0.1:<port>/parley` */
  base: string
  sockets: ServerSocket[]
  /** The disconnect reasons of its sockets, in order. */
  reasons: string[]
}

/**
 * Node `node0` of `cluster`, over TLS, published at `https://127.0.0.1:<port>` (what its adapter
 * publishes as its address), and node `node1` over plain HTTP, with `options`.
 */
async function twoNodes(options: ParleyServerOptions) {
  // With handoff, the test adapter names an owner's URL, so that it is forwarded to over the network.
  const cluster = new Cluster({ handoff: true })
  const app = Fastify({ https: { key, cert }, forceCloseConnections: true })
  apps.push(app)
  await app.register(parley, { adapter: cluster.adapter('node0'), handoff: { timeout: 500 } })
  const a: HttpsNode = { app, base: '', sockets: [], reasons: [] }
  app.parley.on('connection', (socket) => {
    a.sockets.push(socket)
    socket.on('echo', (text: string, ack: (reply: string) => void) => ack(`echo ${text}`))
    socket.on('disconnect', (reason) => a.reasons.push(reason))
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (!address || typeof address === 'string') throw new Error('no port')
  cluster.addresses.set('node0', `https://127.0.0.1:${address.port}`)
  a.base = `https://127.0.0.1:${address.port}/parley`
  const b: Started = await startServer({ ...options, adapter: cluster.adapter('node1') })
  apps.push(b.app)
  return { cluster, a, b }
}

/** A session of node `a`, opened over WebSocket (trusting its certificate) and left to resume. */
async function sessionOn(a: HttpsNode): Promise<string> {
  const first = await rawConnect('websocket', a.base, {}, { ca: cert })
  first.close()
  await until(() => a.sockets.length === 1, 3000, 'the session on the https node')
  return first.sid
}

describe.each(['sse', 'polling'] as const)(
  'a session of an https node, over %s through another node',
  (transport) => {
    it('is resumed, served and ended through the node that forwards to it', async () => {
      const { a, b } = await twoNodes({ forwarding: { ca: cert } })
      const sid = await sessionOn(a)

      const client = await rawConnect(transport, b.base, { sid, ack: 0 })
      clients.push(client)
      expect(client.open).toMatchObject({ sid, recovered: true })
      // Served by its node, over TLS: nothing of it on the node that forwards.
      expect(b.app.parley.socketsCount).toBe(0)
      a.sockets[0]!.emit('news', 'over tls')
      expect(await client.next((p) => p.type === PacketType.EVENT)).toMatchObject({ args: ['over tls'] })
      // Its goodbye, sent on to its node, ends it there.
      expect(await client.sendRaw(GOODBYE)).toBe(204)
      await until(() => a.reasons.length > 0, 3000, 'the session ended on its node')
      expect(a.reasons).toEqual(['client disconnect'])
    })

    it('is not reached without the CA that signed its certificate: the resume gets a new session', async () => {
      const { a, b } = await twoNodes({})
      const sid = await sessionOn(a)

      const client = await rawConnect(transport, b.base, { sid, ack: 0 })
      clients.push(client)
      expect(client.open.recovered).toBe(false)
      expect(b.app.parley.unreachableOwnerCount).toBe(1)
    })
  },
)

describe('a WebSocket of a session of an https node, resumed on another node', () => {
  /** The WebSocket resumed on `b`, relayed to `a` over `wss://`, and what it received. */
  async function relayed(cluster: Cluster, a: HttpsNode, b: Started) {
    const sid = await sessionOn(a)
    const { ws, packets } = await relayedResume(cluster, b.base, sid)
    sockets.push(ws)
    return { sid, ws, packets }
  }

  it('is relayed over wss:// to its node', async () => {
    const { cluster, a, b } = await twoNodes({ forwarding: { ca: cert } })
    const { sid, packets } = await relayed(cluster, a, b)

    expect(packets.find((p) => p.type === PacketType.OPEN)).toMatchObject({ sid, recovered: true })
    expect(b.app.parley.sessionFor(sid)).toBeUndefined()
    a.sockets[0]!.emit('news', 'over wss')
    await until(() => packets.some((p) => p.type === PacketType.EVENT), 3000, 'the event through the relay')
    expect(packets.find((p) => p.type === PacketType.EVENT)).toMatchObject({ args: ['over wss'] })
  })

  // The relaying node closes: its client's goodbye, crossing the CLOSE 'server handoff', goes to
  // the session's node as a POST of its own (relayed-goodbye.ts), over https.
  it("sends the client's late goodbye to its node when the relaying node closes", async () => {
    const { cluster, a, b } = await twoNodes({ forwarding: { ca: cert } })
    const { ws, packets } = await relayed(cluster, a, b)
    const sentWhileOpen = goodbyeAtClose(ws, GOODBYE)
    const closing = b.app.close()
    await until(() => packets.some((p) => p.type === PacketType.CLOSE), 3000, 'the CLOSE server handoff')
    expect(sentWhileOpen()).toBe(true)
    await until(() => a.reasons.length > 0, 3000, 'the session ended on its node')
    await within(closing, 5000, 'the relaying node closed')
    expect(a.reasons).toEqual(['client disconnect'])
  })
})
