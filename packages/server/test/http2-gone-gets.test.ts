// Over HTTP/2, a downstream GET whose client reset its stream while an application's hook held it
// up is gone as an HTTP/1.1 one whose connection closed is (gone-gets.test.ts): it becomes no
// session's stream or held poll, and what the session sends waits for the client's next GET; an
// ended session's last words meet such a GET without an error. A held poll whose client resets
// it is let go as well. Node's compatibility response over
// HTTP/2 has no `destroyed`, and its `socket` is `undefined` once its stream closed: only its
// stream says it is gone.
import { constants, type ServerHttp2Stream } from 'node:http2'
import { PacketType } from '@parley/protocol'
import type { ServerSocket } from '@parley/server'
import { afterEach, expect, it } from 'vitest'
import { packetsOf } from './answer-packets.js'
import { type H2Logger, type H2Node, startH2Node } from './h2-node.js'
import { until, within } from './helpers.js'

const nodes: H2Node[] = []
afterEach(async () => {
  for (const node of nodes.splice(0)) await node.stop()
})

type Kind = 'sse' | 'poll'

/**
 * A node whose first GET of `kind` with `slow` in its URL waits in an onRequest hook until its
 * client has left, and the server's socket of a session opened on `kind`.
 */
async function heldGetNode(
  kind: Kind,
  logger?: H2Logger,
): Promise<{
  node: H2Node
  sid: string
  socket: ServerSocket
  hooked: () => boolean
  handled: () => boolean
}> {
  let hooked = false
  let handled = false
  let socket: ServerSocket | undefined
  const node = await startH2Node(
    {},
    (app) => {
      app.addHook('onRequest', async (request, reply) => {
        if (request.method !== 'GET' || !request.url.includes(`/${kind}?`) || !request.url.includes('slow'))
          return
        hooked = true
        // The response closes with the stream, once the server has heard its reset.
        await new Promise((resolve) => reply.raw.once('close', resolve))
      })
      app.addHook('preHandler', async (request) => {
        if (request.url.includes('slow')) handled = true
      })
      app.parley.on('connection', (s) => {
        socket = s
      })
    },
    logger,
  )
  nodes.push(node)
  const answer = await node.send('POST', `${kind}?v=1`, '[8,{}]', { 'content-type': 'text/plain' })
  const open = packetsOf(answer.text)[0]
  if (open?.type !== PacketType.OPEN) throw new Error(`no OPEN: ${answer.text}`)
  await until(() => socket !== undefined, 3000, 'the session')
  return { node, sid: open.sid, socket: socket!, hooked: () => hooked, handled: () => handled }
}

/** Sends a GET on `path` and resets its stream while the hook holds it. */
async function resetWhileHooked(
  node: H2Node,
  path: string,
  hooked: () => boolean,
  handled: () => boolean,
): Promise<void> {
  const stream = node.client.request({ ':method': 'GET', ':path': `/parley/${path}` })
  stream.on('error', () => {})
  await until(hooked, 3000, 'the GET reached the hook')
  stream.close(constants.NGHTTP2_CANCEL)
  await until(handled, 3000, 'the handler ran')
  await new Promise((resolve) => setImmediate(resolve))
}

/** Opens a stream on `path`; its text so far, read on demand. */
function read(node: H2Node, path: string): () => string {
  const stream = node.client.request({ ':method': 'GET', ':path': `/parley/${path}` })
  stream.on('error', () => {})
  let text = ''
  stream.setEncoding('utf8')
  stream.on('data', (chunk: string) => {
    text += chunk
  })
  return () => text
}

it('does not take an SSE stream reset while an onRequest hook ran for the session stream', async () => {
  const { node, sid, socket, hooked, handled } = await heldGetNode('sse')
  await resetWhileHooked(node, `sse?v=1&sid=${sid}&ack=0&slow=1`, hooked, handled)
  // Volatile: never sent again, so it reaches the client only if it waited for the next stream.
  socket.volatile.emit('news', 'while no stream is open')
  const text = read(node, `sse?v=1&sid=${sid}&ack=0`)
  await until(() => text().includes('while no stream is open'), 3000, 'the event on the next stream')
})

it("writes an ended session's last words to no SSE stream reset while a hook ran, and logs no error", async () => {
  const lines: string[] = []
  const logger = { level: 'warn', stream: { write: (line: string) => void lines.push(line) } }
  const { node, sid, socket, hooked, handled } = await heldGetNode('sse', logger)
  // Ended with no stream open: its CLOSE waits for the next GET, which its client resets.
  socket.disconnect()
  await resetWhileHooked(node, `sse?v=1&sid=${sid}&ack=0&slow=1`, hooked, handled)
  // The server still answers, and said nothing of that GET.
  const next = await node.send('POST', 'sse?v=1', '[8,{}]', { 'content-type': 'text/plain' })
  expect(packetsOf(next.text)[0]?.type).toBe(PacketType.OPEN)
  expect(lines).toEqual([])
})

it('leaves the held poll in place when a later h2 GET was reset before it was handled', async () => {
  const { node, sid, socket, hooked, handled } = await heldGetNode('poll')
  let held: string | undefined
  void node.send('GET', `poll?v=1&sid=${sid}&ack=0`).then((answer) => {
    held = answer.text
  })
  await until(() => node.app.parley.sockets.get(socket.id)?.transport === 'polling', 3000, 'the session')
  // Let the first GET be held before the second comes.
  await new Promise((resolve) => setTimeout(resolve, 50))
  await resetWhileHooked(node, `poll?v=1&sid=${sid}&ack=0&slow=1`, hooked, handled)
  expect(held).toBeUndefined()
  socket.volatile.emit('news', 'to the poll that waits')
  await until(() => held !== undefined, 3000, 'the answer')
  expect(held).toContain('to the poll that waits')
})

it('keeps what a poll reset while held did not take for the next h2 GET', async () => {
  let socket: ServerSocket | undefined
  let reset = false
  const node = await startH2Node({}, (app) => {
    app.parley.on('connection', (s) => {
      socket = s
    })
    app.server.on('stream', (stream: ServerHttp2Stream, headers) => {
      if (String(headers[':path']).includes('first')) stream.once('close', () => (reset = true))
    })
  })
  nodes.push(node)
  const answer = await node.send('POST', 'poll?v=1', '[8,{}]', { 'content-type': 'text/plain' })
  const open = packetsOf(answer.text)[0]
  if (open?.type !== PacketType.OPEN) throw new Error(`no OPEN: ${answer.text}`)
  await until(() => socket !== undefined, 3000, 'the session')
  const stream = node.client.request({
    ':method': 'GET',
    ':path': `/parley/poll?v=1&sid=${open.sid}&ack=0&first=1`,
  })
  stream.on('error', () => {})
  // Held: the session has nothing to say yet. Then its client gives up on it.
  await new Promise((resolve) => setTimeout(resolve, 100))
  stream.close(constants.NGHTTP2_CANCEL)
  await until(() => reset, 3000, 'the server to see the poll reset')
  await new Promise((resolve) => setImmediate(resolve))
  socket!.volatile.emit('news', 'after the reset')
  const next = await within(
    node.send('GET', `poll?v=1&sid=${open.sid}&ack=0`),
    3000,
    'the next poll answered',
  )
  expect(next.text).toContain('after the reset')
})
