// A server whose handshake middleware did not settle within its handshakeTimeout answers
// PARLEY_HANDSHAKE_TIMEOUT and says that the middleware was slow, not the transport (`ackId` 1 in
// a WebSocket's ERROR, `"middleware": true` in an HTTP body). The client then tries the same
// transport again after its backoff, as after an `auth` of its own that did not settle, rather
// than step down and run the same middleware on a worse transport. A HELLO that reached the
// server late is a transport failure still (late-hello.test.ts).
import { ErrorCode, type ParleyError, type TransportName } from '@parley/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import { client, closeAll, closeClients, next, parleyOf, startServer } from './helpers.js'

afterEach(async () => {
  closeClients()
  await closeAll()
})

/** The server's handshakeTimeout, in ms: the first run of the middleware outlives it. */
const BOUND = 200

describe.each([[['websocket', 'sse', 'polling']], [['sse', 'polling']]] as TransportName[][][])(
  'a handshake middleware slow once, with the transports %j',
  (transports) => {
    it('is tried again on the same transport after the backoff, with no transport_error', async () => {
      const runs: string[] = []
      let slow = true
      const server = await startServer(
        (app) => {
          parleyOf(app).use(async (socket) => {
            runs.push((socket.handshake as { transport?: string }).transport ?? '?')
            if (!slow) return
            slow = false
            await new Promise((resolve) => setTimeout(resolve, BOUND * 3))
          })
        },
        { handshakeTimeout: BOUND },
      )
      const socket = client(server.url, { transports, connectTimeout: 5000, reconnectionDelay: 50 })
      const said: string[] = []
      let first: ParleyError<string> | undefined
      socket.on('transport_error', (transport, error) => said.push(`${transport} ${error.code}`))
      socket.on('connect_error', (error: ParleyError<string>, willRetry: boolean) => {
        first ??= error
        said.push(`connect_error ${error.code} ${willRetry}`)
      })
      await next(socket, 'connect', 10_000)
      const [preferred] = transports
      expect(socket.transport).toBe(preferred)
      expect(runs).toEqual([preferred, preferred])
      expect(said).toEqual([`connect_error ${ErrorCode.HANDSHAKE_TIMEOUT} true`])
      expect(first?.details).toMatchObject({ middleware: true })
    })
  },
)
