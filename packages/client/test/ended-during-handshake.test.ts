// A new session that the application ends during its handshake (while the adapter records it)
// is answered with that session's CLOSE, however late: the client stops as after any `server
// disconnect`, which it would not, were it told to try again.
import { ErrorCode, type ParleyError } from '@parley/protocol'
import { MemoryAdapter } from '@parley/server'
import { afterEach, describe, expect, it } from 'vitest'
import { client, closeAll, next, parleyOf, type ServerSocket, startServer, until } from './helpers.js'

afterEach(closeAll)

const TRANSPORTS = ['websocket', 'sse', 'polling'] as const

describe.each(TRANSPORTS)('over %s', (transport) => {
  it('stops at the CLOSE of a new session the application ended during its handshake, however late', async () => {
    // The sockets whose own room the adapter is recording; it finishes once the test says so.
    const recording: string[] = []
    let release = () => {}
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    const held: ServerSocket[] = []
    const server = await startServer(() => {}, {
      // Past the recovery window the server's table of ended sessions forgets the CLOSE.
      recovery: { window: 20 },
      // The adapter takes its time recording the socket's own room, as a remote one may.
      adapter: (sockets: ConstructorParameters<typeof MemoryAdapter>[0]) => {
        const adapter = new MemoryAdapter(sockets)
        const addAll = adapter.addAll.bind(adapter)
        return Object.assign(adapter, {
          addAll: async (id: string, rooms: Iterable<string>) => {
            recording.push(id)
            await gate
            return addAll(id, rooms)
          },
        })
      },
    })
    const parley = parleyOf(server.app)
    parley.on('connection', (s) => held.push(s))
    const socket = client(server.url, { transports: [transport] })
    let downs = 0
    socket.on('disconnect', () => downs++)
    await until(() => recording.length > 0)
    for (const s of server.app.parley.sockets.values()) s.disconnect()
    await new Promise((resolve) => setTimeout(resolve, 100))
    release()
    // Never connected, it hears of the end as a resume of an ended session does, and stops.
    const [error, willRetry] = (await next(socket, 'connect_error')) as [ParleyError<string>, boolean]
    expect(error.code).toBe(ErrorCode.DISCONNECTED)
    expect(error.details).toEqual({ reason: 'server disconnect' })
    expect(willRetry).toBe(false)
    expect(socket.active).toBe(false)
    expect(downs).toBe(0)
    expect(held).toEqual([])
  })
})
