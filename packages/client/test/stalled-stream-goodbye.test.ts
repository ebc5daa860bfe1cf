// disconnect() while an SSE handshake waits for its stream: the server answered the HELLO with
// OPEN and holds the session on that stream, whose first bytes a proxy keeps back (it buffers
// event streams). In Node the client gives such a handshake a grace of 2 s, then lets it go; the
// goodbye then goes in a POST of its own, and the server ends the session at once rather than
// after its recovery window. Real client and server, the fault proxy buffering the stream.
import { afterEach, describe, expect, it } from 'vitest'
import { type FaultProxy, startFaultProxy } from '../../../test/support/fault-proxy.js'
import { client, closeAll, next, parleyOf, type ServerSocket, startServer, until } from './helpers.js'

let proxy: FaultProxy | undefined
afterEach(async () => {
  await proxy?.close()
  proxy = undefined
  await closeAll()
})

/** A server behind the proxy that records how its sessions end; `seen` runs for each new one. */
async function recording(seen: (peer: ServerSocket) => void = () => {}) {
  const ends: string[] = []
  const peers: ServerSocket[] = []
  // The recovery window is the server's default, two minutes: a session left without a goodbye
  // outlives the test. A heartbeat longer than the test too: the PING that the proxy holds back
  // with the stream would otherwise let the server give up on the transport (and the proxy
  // deliver the stream) before the grace is over.
  const server = await startServer(
    (app) => {
      parleyOf(app).on('connection', (peer) => {
        peers.push(peer)
        peer.on('disconnect', (reason: string) => ends.push(reason))
        seen(peer)
      })
    },
    { pingInterval: 20_000, pingTimeout: 20_000 },
  )
  proxy = await startFaultProxy(server.port)
  return { ends, peers, proxy }
}

describe('disconnect() while a stream stalls', () => {
  it('ends the new session whose SSE handshake got OPEN and no stream', async () => {
    const { ends, proxy } = await recording()
    proxy.sse = 'buffer'
    // A bound far past the grace: the handshake is still waiting for its stream when it ends.
    const socket = client(proxy.url, { transports: ['sse'], connectTimeout: 30_000 })
    await until(() => proxy.streams === 1, 3000, 'the stream to be answered (and held)')
    socket.disconnect()
    await until(() => ends.length === 1, 6000, 'the session to end')
    expect(ends).toEqual(['client disconnect'])
  })

  it.each([
    // In Node, the grace ends first: the transport is let go, and the goodbye goes then.
    ['past the grace', 30_000],
    // The stream's connect timeout ends first, as in a browser, where there is no grace: the
    // handshake fails, and the goodbye goes then, for a resumed session too.
    ['past its connect timeout, within the grace', 1000],
  ])('ends the session moved onto an SSE probe whose stream stalls %s', async (_, connectTimeout) => {
    let socket: ReturnType<typeof client> | undefined
    const { ends, peers, proxy } = await recording((peer) => {
      // The server has just moved the session onto the probe (and sent MOVED on polling).
      peer.on('transport', (now: string) => {
        if (now === 'sse') socket!.disconnect()
      })
    })
    socket = client(proxy.url, {
      transports: ['polling', 'sse'],
      upgradeDelay: 100,
      connectTimeout,
    })
    await next(socket, 'connect')
    proxy.sse = 'buffer'
    await until(() => ends.length === 1, 8000, 'the session to end')
    expect(ends).toEqual(['client disconnect'])
    // One session throughout: the probe resumed it.
    expect(peers).toHaveLength(1)
  })
})
