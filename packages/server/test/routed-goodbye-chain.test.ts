// The goodbye of a session whose node handed it off and is gone, at a closing node, on an adapter
// whose nodes have no URL (requests go through `Adapter.routeRequest`, in-process): the closing
// node sends it on to a live node it picks, and a node it reaches that is closing too sends it on
// again from there, as over HTTP (post-after-drain.test.ts in packages/redis). Such a node refused
// it with a 503 instead (its Fastify refuses `inject` as it closes): the node that sent it there
// passed it over for its own next pick, and a goodbye whose sender knew no other live node was
// lost, the session waiting unclaimed for its recovery window.
import { encodeText, PacketType } from '@parley/protocol'
import type { ServerSocket } from '@parley/server'
import { afterEach, expect, it } from 'vitest'
import { Cluster } from './cluster-adapter.js'
import { closeApp, type Started, startServer, until, within } from './helpers.js'

const started: Started[] = []
afterEach(async () => {
  for (const node of started.splice(0)) await closeApp(node.app)
})

/** A polling session opened by its handshake POST alone: no GET of its client waits. */
async function handshake(base: string): Promise<string> {
  const res = await fetch(`${base}/poll?v=1`, {
    method: 'POST',
    body: JSON.stringify([PacketType.HELLO, {}]),
  })
  const text = await res.text()
  const open = JSON.parse(text) as [number, { sid: string }]
  if (open[0] !== PacketType.OPEN) throw new Error(`no OPEN: ${text}`)
  return open[1].sid
}

/** The client's goodbye, a POST of its CLOSE, to `base`; its status. */
async function goodbye(base: string, sid: string): Promise<number> {
  const close = encodeText({ type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' })
  const res = await fetch(`${base}/poll?v=1&sid=${sid}`, { method: 'POST', body: close })
  await res.arrayBuffer()
  return res.status
}

it('a goodbye through two closing nodes reaches the live node, which ends the session at once (through routeRequest)', async () => {
  // Each node names the first other node open, in the order they started: b names d, d names e.
  const cluster = new Cluster({ handoff: true, anotherNode: 'routed' })
  const node = async (name: string, timeout: number) => {
    const one = await startServer({ adapter: cluster.adapter(name), handoff: { timeout, retrySpread: 100 } })
    started.push(one)
    return one
  }
  const a = await node('a', 300)
  const d = await node('d', 5000)
  const e = await node('e', 5000)
  const b = await node('b', 5000)
  const ends: string[] = []
  e.app.parley.on('restored', (socket: ServerSocket) => {
    socket.on('disconnect', (reason: string) => ends.push(reason))
  })
  // b's pick of live nodes leaves e out (its view of the cluster lags: e came late), so only d,
  // closing, can take the goodbye on to e.
  const adapter = b.app.parley.adapter
  const named = adapter.anotherNode!.bind(adapter)
  adapter.anotherNode = (sid, except) => named(sid, new Set([...(except ?? []), 'e']))

  const sid = await handshake(a.base)
  // a drains: nobody claims the session (its client is gone), and a closes.
  await within(a.app.close(), 5000, 'a closed')
  expect(cluster.handoffs.get(sid)?.stored).toBe(true)
  // b and d close too, each drain held open by a session of its own that nobody claims.
  const heldOnB = await handshake(b.base)
  const heldOnD = await handshake(d.base)
  const closingB = b.app.close()
  const closingD = d.app.close()
  await until(() => b.app.parley.closing && d.app.parley.closing, 3000, 'b and d closing')

  const status = await within(goodbye(b.base, sid), 5000, 'the goodbye answered by b')
  await until(() => ends.length > 0, 3000, 'the session ended on e')

  expect(status).toBe(204)
  expect(ends).toEqual(['client disconnect'])
  expect(cluster.handoffs.has(sid)).toBe(false)
  // Their own sessions' goodbyes end b's and d's drains.
  await Promise.all([goodbye(b.base, heldOnB), goodbye(d.base, heldOnD)])
  await within(Promise.all([closingB, closingD]), 5000, 'b and d closed')
}, 30_000)

// A bare 4xx (no code) from the node picked for a goodbye is about the hop (431: the headers the
// sender added took them past that node's limit; an application's hook), not the goodbye, which
// the next node may take: so it goes there, as over HTTP (post-after-drain.test.ts). It went to
// the client instead (as a 503 to try again), the goodbye lost.
it('a goodbye whose pick answers a bare 4xx goes to the next live node, which ends the session (through routeRequest)', async () => {
  const cluster = new Cluster({ handoff: true, anotherNode: 'routed' })
  let refusing = false
  const a = await startServer({ adapter: cluster.adapter('a'), handoff: { timeout: 300, retrySpread: 100 } })
  started.push(a)
  // b's first pick: it answers every request with a bare 431 while `refusing`.
  const d = await startServer({ adapter: cluster.adapter('d') }, (app) => {
    app.addHook('onRequest', async (_request, reply) => {
      if (refusing) return reply.code(431).type('text/plain').send('headers too large')
    })
  })
  started.push(d)
  const e = await startServer({ adapter: cluster.adapter('e') })
  started.push(e)
  const b = await startServer({ adapter: cluster.adapter('b'), handoff: { timeout: 5000, retrySpread: 100 } })
  started.push(b)
  const ends: string[] = []
  e.app.parley.on('restored', (socket: ServerSocket) => {
    socket.on('disconnect', (reason: string) => ends.push(reason))
  })

  const sid = await handshake(a.base)
  // a drains: nobody claims the session (its client is gone), and a closes.
  await within(a.app.close(), 5000, 'a closed')
  // b closes, its drain held open by a session of its own that nobody claims.
  const heldOnB = await handshake(b.base)
  const closingB = b.app.close()
  await until(() => b.app.parley.closing, 3000, 'b closing')
  refusing = true

  const status = await within(goodbye(b.base, sid), 5000, 'the goodbye answered by b')
  await until(() => ends.length > 0, 3000, 'the session ended on e')

  expect(status).toBe(204)
  expect(ends).toEqual(['client disconnect'])
  refusing = false
  await goodbye(b.base, heldOnB)
  await within(closingB, 5000, 'b closed')
}, 30_000)
