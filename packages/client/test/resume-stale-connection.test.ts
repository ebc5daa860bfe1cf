// A resume over SSE or polling whose HELLO goes out on a connection that closes under it before
// any answer: in Node, a pooled connection that the loss of the transport had closed too, which
// the pool handed out before it heard so (a cut network, seen under load). The client tries the
// same transport once more, at once, and says nothing of that first try: the application hears
// one transport_error, for the loss, then the resume; no disconnect.
//
// The proxy cuts the answer to the resume's first HELLO (`hellos: 'cut once'`): the same failure
// (UND_ERR_SOCKET), made when the test says rather than by a race.
import { describe, expect, it } from 'vitest'
import { startFaultProxy } from '../../../test/support/fault-proxy.js'
import { STABLE_MS } from '../src/fallback.js'
import { next, own, parleyOf, type ServerSocket, until } from './helpers.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe.concurrent.each(['sse', 'polling'] as const)('a resume over %s', (transport) => {
  it('whose HELLO meets a connection closed under it tries again at once, unannounced', async (context) => {
    const test = own(context)
    const peers: ServerSocket[] = []
    const server = await test.server((app) => parleyOf(app).on('connection', (peer) => peers.push(peer)))
    const proxy = test.later(await startFaultProxy(server.port))
    const socket = test.client(proxy.url, { transports: [transport], connectTimeout: 10_000 })
    const log: string[] = []
    socket.on('transport_error', (name, error) => log.push(`transport_error:${name}:${error.code}`))
    socket.on('connect_error', (error) => log.push(`connect_error:${error.code}`))
    socket.on('transport', (now, _before, why) => log.push(`transport:${why}:${now}`))
    socket.on('disconnect', (reason) => log.push(`disconnect:${reason}`))
    await next(socket, 'connect', 10_000)
    await until(() => peers.length === 1)
    const atServer: number[] = []
    peers[0]!.on('n', (n: number) => atServer.push(n))
    // Up long enough that the loss is no failure to open: the client resumes at once.
    await sleep(STABLE_MS + 300)
    proxy.hellos = 'cut once'
    proxy.cut('http')
    socket.emit('n', 1)
    await until(() => log.includes(`transport:resume:${transport}`), 10_000, 'the resume')
    await until(() => atServer.length === 1, 3000, 'what was sent meanwhile')
    expect(proxy.cutHellos).toBe(1)
    expect(log).toEqual([
      `transport_error:${transport}:PARLEY_TRANSPORT_ERROR`,
      `transport:resume:${transport}`,
    ])
    expect(socket.recovered).toBe(true)
    expect(atServer).toEqual([1])
    expect(peers).toHaveLength(1)
  }, 35_000)
})
