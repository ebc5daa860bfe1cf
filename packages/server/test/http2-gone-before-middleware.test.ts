// An HTTP/2 client that resets its handshake POST's stream while the server still looks up the
// node of the session its HELLO resumes (an adapter across nodes, `sessionOwner`): it has left
// before the handshake middleware begins, and the middleware runs for it no more than for an
// HTTP/1.1 client whose connection closed (gone-mid-middleware.test.ts). Node's compatibility
// response over HTTP/2 has no `destroyed`: only its stream says the client is gone.
import { constants, type ServerHttp2Stream } from 'node:http2'
import { encodeText, PacketType } from '@parley/protocol'
import type { Adapter } from '@parley/server'
import { afterEach, expect, it } from 'vitest'
import { Cluster } from './cluster-adapter.js'
import { type H2Node, startH2Node } from './h2-node.js'
import { until } from './helpers.js'

const nodes: H2Node[] = []
afterEach(async () => {
  for (const node of nodes.splice(0)) await node.stop()
})

it('runs no handshake middleware for a client that reset its stream during the owner lookup', async () => {
  const cluster = new Cluster()
  let ran = 0
  // The server's side of the stream, closed once it heard the reset.
  let reset = false
  const node = await startH2Node({ adapter: cluster.adapter('b') }, (app) => {
    app.parley.use(async () => {
      ran++
    })
    app.server.on('stream', (stream: ServerHttp2Stream) => {
      stream.once('close', () => {
        reset = true
      })
    })
  })
  nodes.push(node)
  const parley = node.app.parley
  // The lookup waits until the test has seen the stream reset on the server's side.
  let asked = false
  let answer = () => {}
  const answered = new Promise<void>((resolve) => {
    answer = resolve
  })
  const adapter: Pick<Adapter, 'sessionOwner'> = parley.adapter
  const lookUp = adapter.sessionOwner!.bind(adapter)
  Object.assign(adapter, {
    sessionOwner: async (sid: string) => {
      asked = true
      await answered
      return lookUp(sid)
    },
  })
  // The handshake's end, whatever it answered: its client is gone, and reads nothing.
  let settled = false
  const handshake = parley.handshake.bind(parley)
  parley.handshake = (...args) =>
    handshake(...args).finally(() => {
      settled = true
    })
  let connected = 0
  parley.on('connection', () => connected++)

  const stream = node.client.request({
    ':method': 'POST',
    ':path': '/parley/poll?v=1',
    'content-type': 'text/plain',
  })
  stream.on('error', () => {})
  stream.end(encodeText({ type: PacketType.HELLO, sid: 'nosuchsession', auth: {} }))
  await until(() => asked, 5000, 'the owner lookup')
  stream.close(constants.NGHTTP2_CANCEL)
  await until(() => reset, 5000, 'the server to see the stream reset')
  answer()
  await until(() => settled, 5000, 'the handshake to end')
  // A turn for what would follow: the registration, `connection`.
  await new Promise((resolve) => setImmediate(resolve))
  expect({ ran, connected, sessions: parley.sockets.size }).toEqual({ ran: 0, connected: 0, sessions: 0 })
})
