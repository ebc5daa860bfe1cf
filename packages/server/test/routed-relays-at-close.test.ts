// A node that closes while it relays a stream or a held poll through its adapter's own
// `routeRequest` (an adapter whose nodes have no URL: the owner answers in the same process). As
// over the network (forwarding.test.ts), the session lives on at its owner, so the client is
// told what a drained session's client is told, CLOSE 'server handoff', and resumes elsewhere,
// where a relay cut at close would fail its transport; the owner sees its request let go. And
// so a relayed stream's owner sees its request closed when the client leaves, as it would over
// the network.
import { decodeText, type Packet, PacketType } from '@parley/protocol'
import type { FastifyInstance } from 'fastify'
import { afterEach, expect, it } from 'vitest'
import { Cluster } from './cluster-adapter.js'
import { closeApp, startServer, until, within } from './helpers.js'
import { type RawClient, rawConnect } from './raw-client.js'

const apps: FastifyInstance[] = []
const raws: RawClient[] = []
afterEach(async () => {
  for (const raw of raws.splice(0)) raw.close()
  for (const app of apps.splice(0)) await closeApp(app)
})

/** The packets of an SSE stream's events, or of a poll's lines. */
function packets(text: string, sse: boolean): Packet[] {
  const lines = sse
    ? text
        .split('\n\n')
        .filter((event) => event.startsWith('data: '))
        .map((event) => event.slice(6))
    : text.split('\n').filter((line) => line !== '')
  return lines.map((line) => {
    const decoded = decodeText(line)
    if (!decoded.ok) throw new Error(`not a packet: ${line}`)
    return decoded.packet
  })
}

it.each(['sse', 'polling'] as const)(
  'ends a %s GET relayed through routeRequest with CLOSE server handoff when the relaying node closes',
  async (transport) => {
    const cluster = new Cluster()
    const a = await startServer({ adapter: cluster.adapter('a') })
    apps.push(a.app)
    const b = await startServer({ adapter: cluster.adapter('b') })
    apps.push(b.app)
    const raw = await rawConnect(transport, a.base)
    raws.push(raw)
    const sid = raw.sid
    const session = () => a.app.parley.sessionFor(sid)
    // The client's own GET goes; its next one comes through b.
    if (transport === 'polling') raw.close()
    const path = transport === 'sse' ? 'sse' : 'poll'
    const answer = fetch(`${b.base}/${path}?v=1&sid=${sid}`)
    if (transport === 'sse') expect((await answer).status).toBe(200)
    else
      await until(() => session()?.transport?.http?.nextGetWithin() === undefined, 3000, 'a poll held at a')

    await within(b.app.close(), 3000, 'b closed')
    const res = await within(answer, 3000, 'the answer through b')
    expect(res.status).toBe(200)
    const got = packets(await within(res.text(), 3000, 'the end of what b relayed'), transport === 'sse')
    expect(got.at(-1)).toMatchObject({ type: PacketType.CLOSE, reason: 'server handoff' })
    // The session lives on at a, its request through b let go.
    expect(session()?.state).not.toBe('closed')
    expect(session()?.transport?.name).toBe(transport)
  },
)

it("lets the owner's stream go when the client of a stream relayed through routeRequest leaves", async () => {
  const cluster = new Cluster()
  const a = await startServer({ adapter: cluster.adapter('a') })
  apps.push(a.app)
  const b = await startServer({ adapter: cluster.adapter('b') })
  apps.push(b.app)
  // What b lets go of through the adapter: the owner then sees its request closed.
  let aborted = 0
  const onB = cluster.nodes.get('b')!
  const routeRequest = onB.routeRequest.bind(onB)
  onB.routeRequest = async (node, request) => {
    const response = await routeRequest(node, request)
    const abort = response.abort
    response.abort = () => {
      aborted++
      abort()
    }
    return response
  }
  const raw = await rawConnect('sse', a.base)
  raws.push(raw)
  const leaving = new AbortController()
  const res = await fetch(`${b.base}/sse?v=1&sid=${raw.sid}`, { signal: leaving.signal })
  expect(res.status).toBe(200)
  expect(aborted).toBe(0)
  leaving.abort()
  await until(() => aborted > 0, 3000, 'the stream let go at the owner')
})
