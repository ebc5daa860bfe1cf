// A HELLO larger than the server's maxPayload (an auth too large for it) is a refusal of the
// client: no other transport, nor another try, would send a smaller one. Over SSE and polling
// the server answers its POST 413 PARLEY_PAYLOAD_TOO_LARGE, over WebSocket it closes with 1009;
// the client reads both alike: at connect, a `connect_error` with that code and no retry; on an
// upgrade probe, an `error` with that code and no probe after it, the session going on where it
// is. Real client against the real server.
import { ErrorCode, type ParleyError } from '@parley/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import { client, closeAll, next, parleyOf, type ServerSocket, startServer, until } from './helpers.js'

afterEach(closeAll)

/** Past the server's smallest maxPayload (256 bytes) on its own. */
const LARGE = { token: 'x'.repeat(300) }

describe.each(['websocket', 'sse', 'polling'] as const)('a HELLO past maxPayload over %s', (transport) => {
  it('stops the client at connect: PARLEY_PAYLOAD_TOO_LARGE, a refusal, no retry', async () => {
    const server = await startServer(() => {}, { maxPayload: 256 })
    const socket = client(server.url, { transports: [transport], auth: LARGE })
    const heard: string[] = []
    socket.on('reconnect_attempt', () => heard.push('reconnect_attempt'))
    const [error, willRetry] = await next<[ParleyError<string>, boolean]>(socket, 'connect_error')
    expect([error.code, error.details?.refused, willRetry]).toEqual([
      ErrorCode.PAYLOAD_TOO_LARGE,
      true,
      false,
    ])
    await until(() => !socket.active, 2000, 'the client to stop')
    // Twice the test client's longest backoff: no attempt follows.
    await new Promise((resolve) => setTimeout(resolve, 400))
    expect(heard).toEqual([])
  })
})

describe.each(['websocket', 'sse'] as const)(
  'an upgrade probe whose HELLO passes maxPayload over %s',
  (probe) => {
    it('is told by `error` with the code, and no probe follows while the session stays', async () => {
      // The handshakes the server took, by transport: the connect's alone.
      const hellos: string[] = []
      const server = await startServer(
        (app) => {
          const parley = parleyOf(app)
          parley.use(async (socket) => {
            hellos.push((socket as ServerSocket & { handshake: { transport: string } }).handshake.transport)
          })
          parley.on('connection', (socket) => {
            socket.on('echo', ((n: number, ack: (n: number) => void) => ack(n)) as (...args: never[]) => void)
          })
        },
        { maxPayload: 256 },
      )
      // The connect's HELLO is small; every later one (the probes') carries the large token.
      let asked = 0
      const socket = client(server.url, {
        transports: ['polling', probe],
        upgradeDelay: 100,
        auth: () => (asked++ === 0 ? {} : LARGE),
      })
      const heard: string[] = []
      socket.on('transport_error', (name, error: ParleyError<string>) =>
        heard.push(`transport_error ${name} ${error.code}`),
      )
      socket.on('transport', (now, before, why) => heard.push(`${before} -> ${now} (${why})`))
      socket.on('disconnect', (reason) => heard.push(`disconnect ${reason}`))
      await next(socket, 'connect')
      const [error] = await next<[ParleyError<string>]>(socket, 'error', 5000)
      expect(error).toMatchObject({
        code: ErrorCode.PAYLOAD_TOO_LARGE,
        details: { refused: true, transport: probe },
      })
      // For a second (five times the doubled wait a failed probe would have had), the session
      // carries on over polling and no probe follows: the auth was asked for the one probe alone.
      const since = performance.now()
      for (let n = 0; n < 1000 && performance.now() - since < 1000; n++)
        expect(await socket.timeout(2000).emitWithAck('echo', n)).toBe(n)
      expect([asked, hellos, heard, socket.transport]).toEqual([2, ['polling'], [], 'polling'])
    })
  },
)
