// A WebSocket the Node client closes while its server says nothing: `ws` waits 30 s for the
// server's side of the closing handshake, and held the process that long after the client let
// go. The client now waits a grace of 2 s for it once what it sent has left, then ends the
// connection: a process must exit well before `ws` would have. A server that is only slow to
// read still gets the goodbye, however long it takes to leave.
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { startTcpProxy } from '../../../test/support/tcp-proxy.js'
import { startChild } from './child-process.js'
import { next, own, parleyOf, type ServerOptions, until } from './helpers.js'

const CHILD = fileURLToPath(new URL('./silent-close-child.ts', import.meta.url))
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A server behind a proxy that can freeze its connections, and the reasons its sessions ended. */
async function serve(test: ReturnType<typeof own>, options: ServerOptions = {}) {
  const ends: string[] = []
  const server = await test.server(
    (app) =>
      parleyOf(app).on('connection', (peer) => peer.on('disconnect', (reason: string) => ends.push(reason))),
    options,
  )
  const proxy = test.later(await startTcpProxy(server.port))
  return { proxy, ends }
}

/** silent-close-child.ts on `url`, killed once the test finished. */
async function start(test: ReturnType<typeof own>, url: string) {
  const proc = await startChild(CHILD, [url], { stdin: true, mark: 'left' })
  test.later({ close: async () => proc.kill() })
  return {
    /** Waits until the child printed `text`. */
    said: (text: string, ms: number) => until(() => proc.out.includes(text), ms, `"${text}" from the child`),
    disconnect: () => proc.write('go\n'),
    /** What it printed at its `disconnect`, and how long (ms) the process lived on after it. */
    async lingers(): Promise<{ out: string; ms: number }> {
      expect(await proc.exit()).toBe(0)
      return { out: proc.out, ms: proc.sinceMark() }
    },
  }
}

describe.concurrent('a WebSocket closed on a silent server, in Node', () => {
  it('holds the process for a short grace at most after disconnect()', async (context) => {
    const test = own(context)
    // No heartbeat timeout while the test works: the disconnect() is what is tested.
    const { proxy } = await serve(test, { pingInterval: 20_000, pingTimeout: 20_000 })
    const child = await start(test, proxy.url)
    await child.said('open', 10_000)
    proxy.freeze()
    child.disconnect()
    const { out, ms } = await child.lingers()
    expect(out).toContain('left client disconnect')
    // `ws` alone waited 30 s for the server's closing handshake.
    expect(ms).toBeLessThan(10_000)
  })

  it('holds the process for a short grace at most once the heartbeat dropped a WebSocket', async (context) => {
    const test = own(context)
    // The client hears nothing for 6 s (pingInterval + pingTimeout), then drops the transport.
    // Its resume after such a loss waits for the OPEN as long as the server's pingTimeout (a live
    // server answers within it): 5 s, which a loaded machine's pauses of this process stay under,
    // where 1 s ended the child's only attempt ("left ping timeout", never "resumed").
    const { proxy, ends } = await serve(test, { pingInterval: 1000, pingTimeout: 5000 })
    const child = await start(test, proxy.url)
    await child.said('open', 10_000)
    proxy.freeze()
    await child.said('lost', 20_000)
    // On a new connection (the proxy passes those): the dropped WebSocket, still waiting for the
    // server's side of its closing handshake, is what could hold the process now. (Its backoff
    // and the child's own start can take most of 10 s on a loaded machine: the wait is no timing.)
    await child.said('resumed', 20_000)
    child.disconnect()
    const { out, ms } = await child.lingers()
    expect(out).toContain('left client disconnect')
    expect(ms).toBeLessThan(10_000)
    await until(() => ends.length === 1, 2000, 'the session to end')
    expect(ends).toEqual(['client disconnect'])
    // Its waits, each a bound, not a timing, add up past the file's 40 s.
  }, 60_000)

  it('ends the session of a live server with the goodbye, and the process exits', async (context) => {
    const test = own(context)
    const { proxy, ends } = await serve(test)
    const child = await start(test, proxy.url)
    await child.said('open', 10_000)
    child.disconnect()
    const { out, ms } = await child.lingers()
    expect(out).toContain('left client disconnect')
    expect(ms).toBeLessThan(10_000)
    // At once, not after the server's recovery window.
    await until(() => ends.length === 1, 2000, 'the session to end')
    expect(ends).toEqual(['client disconnect'])
  })

  it('still brings the goodbye to a server slow to read it, behind what was sent before', async (context) => {
    const test = own(context)
    // No heartbeat timeout on either side while the server reads nothing.
    const { proxy, ends } = await serve(test, { pingInterval: 20_000, pingTimeout: 20_000 })
    const socket = test.client(proxy.url, { transports: ['websocket'], reconnection: false })
    await next(socket, 'connect', 10_000)
    const release = proxy.holdUpstream()
    // 16 MB: more than the system's buffers take in, so the rest (the goodbye with it) waits in
    // the client's own, and has not left when the grace would have run out.
    const chunk = 'x'.repeat(256 * 1024)
    for (let i = 0; i < 64; i++) socket.volatile.emit('bulk', chunk)
    socket.disconnect()
    // The server reads nothing for longer than the grace (2 s).
    await sleep(3000)
    release()
    await until(() => ends.length === 1, 20_000, 'the session to end')
    expect(ends).toEqual(['client disconnect'])
  })
}, 40_000)
