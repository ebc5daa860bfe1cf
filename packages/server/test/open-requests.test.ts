// A client request whose handler never answers is kept track of (so that a hand-off can answer it
// with PARLEY_SESSION_MOVED) only up to MAX_OPEN_REQUESTS: a handler that takes no callback would
// otherwise let a client grow that set for the session's life by asking it.
import { type Packet, PacketType } from '@parley/protocol'
import type { ServerSocket } from '@parley/server'
import { expect, it } from 'vitest'
import { MAX_OPEN_REQUESTS } from '../src/socket.js'
import { closedAfterEach } from './closed-after-each.js'
import { startServer, until } from './helpers.js'
import { rawConnect } from './raw-client.js'

const opened = closedAfterEach()

const isReply = (packet: Packet) => packet.type === PacketType.REPLY

it('keeps at most MAX_OPEN_REQUESTS unanswered requests; a forgotten one is still answered when its handler replies', async () => {
  const replies = new Map<number, (answer: string) => void>()
  let server: ServerSocket | undefined
  opened.started = await startServer({}, (app) => {
    app.parley.on('connection', (socket) => {
      server = socket
      socket.on('ask', (n: number, reply: (answer: string) => void) => {
        replies.set(n, reply)
      })
    })
  })
  const client = await rawConnect('websocket', opened.started.base)
  const asked = MAX_OPEN_REQUESTS + 5
  for (let n = 1; n <= asked; n++) {
    await client.send({ type: PacketType.EVENT, seq: n, name: 'ask', args: [n], ackId: n })
  }
  await until(() => replies.size === asked, 5000, 'every request at its handler')

  // The oldest request is no longer tracked, but its handler's reply still reaches the client.
  replies.get(1)!('one')
  replies.get(asked)!('last')
  const first = await client.next(isReply)
  const second = await client.next(isReply)
  expect([first, second].map((p) => p.type === PacketType.REPLY && [p.ackId, p.args])).toEqual([
    [1, ['one']],
    [asked, ['last']],
  ])

  // What a hand-off would answer with PARLEY_SESSION_MOVED: the newest, answered ones aside.
  const snapshot = server!.freeze()
  const open = Array.from({ length: MAX_OPEN_REQUESTS - 1 }, (_, i) => asked - MAX_OPEN_REQUESTS + 1 + i)
  expect(snapshot.openRequests).toEqual(open)
  client.close()
})
