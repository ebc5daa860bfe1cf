// An upgrade probe whose HELLO the server's handshake middleware refuses (a token that expired,
// a policy) with a code of the application's: the server refuses the client, not the transport.
// The session goes on where it is, the application hears the server's code and message by an
// `error` event that names the probe's transport, and no probe follows, of a lesser transport or
// of the same one, until another transport is attached: as when the client's own `auth` fails a
// probe. Real client against the real server, a WebSocket probe (refused by an ERROR packet once
// upgraded) and an SSE one (its POST answered 403 with the code).
import { ErrorCode, type ParleyError } from '@parley/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import {
  client,
  closeAll,
  next,
  parleyOf,
  proxiedServers,
  type ServerSocket,
  startServer,
  until,
} from './helpers.js'
import { transportStory } from './probe-mismatch-scene.js'

afterEach(closeAll)

/** The part of the server's handshake this test reads. */
type Handshaking = ServerSocket & { handshake: { transport: string } }

const CASES = [
  // From polling the client probes WebSocket, then SSE when WebSocket fails as a transport.
  { refused: 'websocket', transports: ['polling', 'websocket', 'sse'] },
  // From polling with WebSocket left out, SSE alone.
  { refused: 'sse', transports: ['polling', 'sse'] },
] as const

describe.each(CASES)('a $refused probe refused by the middleware', ({ refused, transports }) => {
  it('is told by `error` with its code, and no probe follows while the session stays', async () => {
    // The handshakes the middleware saw, by transport: the connect's, then the probes'.
    const hellos: string[] = []
    const server = await startServer((app) => {
      const parley = parleyOf(app)
      parley.use(async (socket) => {
        const transport = (socket as Handshaking).handshake.transport
        hellos.push(transport)
        if (transport === refused)
          throw Object.assign(new Error('token expired'), { code: 'APP_TOKEN_EXPIRED' })
      })
      parley.on('connection', (socket) => {
        socket.on('echo', ((n: number, ack: (n: number) => void) => ack(n)) as (...args: never[]) => void)
      })
    })
    // The first probe 100 ms after the attach; after a failure, 200 ms.
    const socket = client(server.url, { transports: [...transports], upgradeDelay: 100 })
    const heard: string[] = []
    socket.on('transport_error', (name, error: ParleyError<string>) =>
      heard.push(`transport_error ${name} ${error.code}`),
    )
    socket.on('connect_error', (error: ParleyError<string>) => heard.push(`connect_error ${error.code}`))
    socket.on('transport', (now, before, why) => heard.push(`${before} -> ${now} (${why})`))
    socket.on('disconnect', (reason) => heard.push(`disconnect ${reason}`))
    await next(socket, 'connect')
    expect(socket.transport).toBe('polling')
    const [error] = await next<[ParleyError<string>]>(socket, 'error', 5000)
    expect(error).toMatchObject({
      code: 'APP_TOKEN_EXPIRED',
      message: 'token expired',
      details: { refused: true, transport: refused },
    })
    // The session carries on, on polling; for a second (five times the doubled wait a failed
    // probe would have had), no probe reaches the server, of the refused transport or of SSE.
    const since = performance.now()
    for (let n = 0; n < 1000 && performance.now() - since < 1000; n++)
      expect(await socket.timeout(2000).emitWithAck('echo', n)).toBe(n)
    expect(hellos).toEqual(['polling', refused])
    expect(heard).toEqual([])
    expect(socket.transport).toBe('polling')
    expect(socket.connected).toBe(true)
  })
})

describe('a probe refused by the middleware, then another transport attached', () => {
  const proxied = proxiedServers()

  it('probes again from that transport', async () => {
    let refusing = true
    const hellos: string[] = []
    const { proxy } = await proxied((app) => {
      parleyOf(app).use(async (socket) => {
        const transport = (socket as Handshaking).handshake.transport
        hellos.push(transport)
        if (refusing && transport === 'websocket')
          throw Object.assign(new Error('token expired'), { code: 'APP_TOKEN_EXPIRED' })
      })
    })
    const socket = client(proxy.url, { transports: ['polling', 'websocket'], upgradeDelay: 100 })
    const said = transportStory(socket)
    await next(socket, 'connect')
    await next(socket, 'error', 5000)
    // The application mends what the code names. The poll is cut, and the resume, its WebSocket
    // refused by the proxy this once, attaches polling anew, from which the climb starts again.
    refusing = false
    proxy.ws = 'reject'
    socket.once('transport', () => {
      proxy.ws = 'pass'
    })
    proxy.cut('http')
    await until(() => socket.transport === 'websocket', 8000, 'the climb to WebSocket')
    expect(said).toEqual([
      `transport_error polling ${ErrorCode.TRANSPORT_ERROR}`,
      `transport_error websocket ${ErrorCode.TRANSPORT_ERROR}`,
      'polling -> polling (resume)',
      'polling -> websocket (upgrade)',
    ])
    expect(hellos).toEqual(['polling', 'websocket', 'polling', 'websocket'])
  })
})
