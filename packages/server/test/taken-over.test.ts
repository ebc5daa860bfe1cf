// A session this node kept after it gave up on its handoff write, which another node took over
// all the same (the write landed late and was claimed: `LocalSockets.takenOver`). Its copy here
// ends as a claimed one does, and what it still awaits from the client moved with the session.
import { ErrorCode, PacketType } from '@parley/protocol'
import type { AdapterFactory, LocalSockets, ServerSocket } from '@parley/server'
import { MemoryAdapter } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { closedAfterEach } from './closed-after-each.js'
import { startServer, until, within } from './helpers.js'
import { rawConnect } from './raw-client.js'

const opened = closedAfterEach()

describe('a kept session taken over by another node', () => {
  it.each(['websocket', 'sse', 'polling'] as const)(
    'fails the replies it awaits PARLEY_SESSION_MOVED, as a claimed one does, over %s',
    async (transport) => {
      let local: LocalSockets | undefined
      const factory: AdapterFactory = (sockets) => {
        local = sockets
        return new MemoryAdapter(sockets)
      }
      const connections: ServerSocket[] = []
      opened.started = await startServer({ adapter: factory }, (app) => {
        app.parley.on('connection', (socket) => {
          connections.push(socket)
        })
      })
      const client = await rawConnect(transport, opened.started.base)
      opened.clients.push(client)
      await until(() => connections.length === 1, 3000, 'the connection')
      const asked = connections[0]!.emitWithAck('question').then(
        () => 'replied',
        (error: { code: string }) => error.code,
      )
      // The question reached the client, which has not replied when the session moves on.
      await client.next((packet) => packet.type === PacketType.EVENT, 3000)
      local!.takenOver?.(client.sid)
      expect(await within(asked, 3000, 'the question settled')).toBe(ErrorCode.SESSION_MOVED)
    },
  )
})
