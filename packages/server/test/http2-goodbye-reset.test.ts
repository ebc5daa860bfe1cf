// Over HTTP/2, the goodbye of a session handed off by a node that is gone, sent on by a closing
// node through the adapter's `routeRequest` to the live node it picked, whose client reset its
// stream while that node's bare 4xx was being read: the client is gone, and nothing more is done
// for it, as over HTTP/1.1 (a response destroyed). Node's compatibility response over HTTP/2 has
// no `destroyed` (only its stream says it was reset): the closing node took the 4xx for a refusal
// by a client still there, logged the picked node as one the goodbye could not be sent on to, and
// sent the goodbye on again to the next live node, for nobody.
import { constants, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2'
import { encodeText, PacketType } from '@parley/protocol'
import type { ServerSocket } from '@parley/server'
import { expect, it } from 'vitest'
import { packetsOf } from './answer-packets.js'
import { Cluster } from './cluster-adapter.js'
import { startH2Node } from './h2-node.js'
import { relayNodesClosedAfterEach } from './h2-relay-nodes.js'
import { startServer, until, within } from './helpers.js'

const { started, h2Nodes } = relayNodesClosedAfterEach()

/** A polling session opened by its handshake POST alone on the HTTP/1.1 node at `base`. */
async function handshake(base: string): Promise<string> {
  const res = await fetch(`${base}/poll?v=1`, {
    method: 'POST',
    body: JSON.stringify([PacketType.HELLO, {}]),
  })
  const open = JSON.parse(await res.text()) as [number, { sid: string }]
  return open[1].sid
}

const TEXT = { 'content-type': 'text/plain' }
const GOODBYE = encodeText({ type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' })

it('sends a goodbye reset while its pick answered a bare 4xx no further, and logs no refusal', async () => {
  const cluster = new Cluster({ handoff: true, anotherNode: 'routed' })
  const a = await startServer({ adapter: cluster.adapter('a'), handoff: { timeout: 300, retrySpread: 100 } })
  started.push(a)
  // b's first pick: a bare 431 to every request while `refusing`.
  let refusing = false
  const d = await startServer({ adapter: cluster.adapter('d') }, (app) => {
    app.addHook('onRequest', async (_request, reply) => {
      if (refusing) return reply.code(431).type('text/plain').send('headers too large')
    })
  })
  started.push(d)
  // The next live node: the goodbye sent on there would end the session on it.
  const e = await startServer({ adapter: cluster.adapter('e') })
  started.push(e)
  const restoredOnE: string[] = []
  e.app.parley.on('restored', (socket: ServerSocket) => restoredOnE.push(socket.id))
  const lines: string[] = []
  const streams: { stream: ServerHttp2Stream; path: string }[] = []
  const b = await startH2Node(
    { adapter: cluster.adapter('b'), handoff: { timeout: 5000, retrySpread: 100 } },
    (app) =>
      app.server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) =>
        streams.push({ stream, path: String(headers[':path']) }),
      ),
    { level: 'warn', stream: { write: (line) => lines.push(line) } },
  )
  h2Nodes.push(b)
  // d's answer, as b reads it: its body held open until the goodbye's stream is reset on b.
  const adapter = cluster.nodes.get('b')
  if (!adapter) throw new Error('no adapter b')
  const route = adapter.routeRequest.bind(adapter)
  let reading = false
  let release = () => {}
  const released = new Promise<void>((resolve) => {
    release = resolve
  })
  adapter.routeRequest = async (node, request) => {
    const answer = await route(node, request)
    if (node !== 'd' || !refusing) return answer
    const body = answer.body
    return {
      ...answer,
      body: (async function* () {
        for await (const chunk of body) yield chunk
        reading = true
        await released
      })(),
    }
  }

  const sid = await handshake(a.base)
  // a drains: nobody claims the session (its client is gone), and a closes.
  await within(a.app.close(), 5000, 'a closed')
  // b closes, its drain held open by a session of its own that nobody claims.
  const held = packetsOf((await b.send('POST', 'poll?v=1', '[8,{}]', TEXT)).text)[0]
  if (held?.type !== PacketType.OPEN) throw new Error('no OPEN from b')
  const closingB = b.app.close()
  await until(() => b.app.parley.closing, 3000, 'b closing')
  refusing = true

  const goodbye = b.client.request({ ':method': 'POST', ':path': `/parley/poll?v=1&sid=${sid}`, ...TEXT })
  goodbye.on('error', () => {})
  goodbye.end(GOODBYE)
  await until(() => reading, 3000, "d's answer read by b")
  goodbye.close(constants.NGHTTP2_CANCEL)
  const reset = () => streams.some(({ stream, path }) => path.includes(sid) && stream.destroyed)
  await until(reset, 3000, 'the goodbye reset on b')
  release()
  refusing = false

  // b's own session's goodbye ends its drain; its close waits for what it sent on.
  await b.send('POST', `poll?v=1&sid=${held.sid}`, GOODBYE, TEXT)
  await within(closingB, 5000, 'b closed')
  expect(lines.filter((line) => line.includes('could not be sent on'))).toEqual([])
  expect(restoredOnE).toEqual([])
}, 25_000)
