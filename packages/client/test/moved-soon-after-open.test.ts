// MOVED on a transport that opened moments before (within STABLE_MS): the server took another
// transport of this client (here the test's own WebSocket, as a probe whose answer was lost
// would be), so the transport MOVED came on works. The resume waits for the backoff, as after
// any loss soon after an open, then tries that transport first, as after a MOVED on a stable
// one; it stepped down to the transports after it instead, an SSE stream for a WebSocket that
// had just carried the MOVED.
import { PacketType } from '@parley/protocol'
import { expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { next, own, parleyOf } from './helpers.js'

it('resumes on the transport that carried MOVED first, after the backoff', async (context) => {
  const test = own(context)
  const server = await test.server()
  const socket = test.client(server.url, { transports: ['websocket', 'sse', 'polling'] })
  await next(socket, 'connect', 5000)
  expect(socket.transport).toBe('websocket')
  const heard: string[] = []
  socket.on('transport', (now, before, why) => heard.push(`${before} -> ${now} (${why})`))
  socket.on('transport_error', (name, error) => heard.push(`transport_error ${name} ${error.code}`))

  // The server takes the session onto a WebSocket of the test's, at once: MOVED on the client's.
  // The server side of the one session, loosely typed: its `sid` is what a resume names.
  const [served] = [...parleyOf(server.app).sockets.values()] as unknown as { session: { sid: string } }[]
  const { sid } = served!.session
  const taker = new WebSocket(`ws://127.0.0.1:${server.port}/parley/ws?v=1`, 'parley.v1')
  context.onTestFinished(() => taker.close())
  const opened = new Promise<string>((resolve, reject) => {
    taker.once('message', (data) => resolve(String(data)))
    taker.once('error', reject)
  })
  taker.once('open', () => taker.send(JSON.stringify([PacketType.HELLO, { sid, ack: 0 }])))
  const resumed = next<[string, string, string]>(socket, 'transport', 5000)
  expect(JSON.parse(await opened)[0]).toBe(PacketType.OPEN)
  expect(await resumed).toEqual(['websocket', 'websocket', 'resume'])
  expect(heard).toEqual(['websocket -> websocket (resume)'])
})
