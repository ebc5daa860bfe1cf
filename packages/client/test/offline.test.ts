// A transport lost while the browser says it is offline (navigator.onLine false, stubbed here:
// Node has no navigator, nor `offline` events), against the real server behind a proxy that cuts
// the network.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { startFaultProxy } from '../../../test/support/fault-proxy.js'
import { client, closeAll, next, startServer, until } from './helpers.js'

const TRANSPORTS = ['websocket', 'sse', 'polling'] as const

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  vi.unstubAllGlobals()
  for (const cleanup of cleanups.splice(0)) await cleanup()
  await closeAll()
})

/** A server behind a proxy that can cut the network, and a browser's navigator, online. */
async function serve() {
  const server = await startServer()
  const proxy = await startFaultProxy(server.port)
  cleanups.push(() => proxy.close())
  const navigator = { onLine: true }
  vi.stubGlobal('navigator', navigator)
  return { proxy, navigator }
}

describe.each(TRANSPORTS)('a transport lost while offline, over %s', (transport) => {
  it('with reconnection off: the client has stopped by the time disconnect fires', async () => {
    const { proxy, navigator } = await serve()
    const socket = client(proxy.url, { transports: [transport], reconnection: false })
    await next(socket, 'connect')
    let active: boolean | undefined
    socket.on('disconnect', () => {
      active = socket.active
    })
    const failed = next<[unknown, boolean]>(socket, 'connect_error')
    navigator.onLine = false
    proxy.offline = true
    proxy.cut('all')
    const [, willRetry] = await failed
    // So a disconnect listener may reconnect by hand, as the README shows: connect() from there
    // starts an attempt, where a client still waiting for the network ignored it.
    expect(active).toBe(false)
    expect(willRetry).toBe(false)
    expect(socket.active).toBe(false)
  })

  it('is no longer connected when disconnect fires, and still active', async () => {
    const { proxy, navigator } = await serve()
    const socket = client(proxy.url, { transports: [transport] })
    await next(socket, 'connect')
    const seen: [boolean, string | null, boolean][] = []
    socket.on('disconnect', () => seen.push([socket.connected, socket.transport, socket.active]))
    const failed = next(socket, 'connect_error')
    navigator.onLine = false
    proxy.offline = true
    proxy.cut('all')
    await failed
    expect(seen).toEqual([[false, null, true]])
  })
})

describe.each(TRANSPORTS)('the browser says it is offline, over %s', (transport) => {
  it('lets go of the transport at once, and resumes the session when it is online again', async () => {
    const { proxy, navigator } = await serve()
    const win = new EventTarget()
    vi.stubGlobal('addEventListener', win.addEventListener.bind(win))
    const socket = client(proxy.url, { transports: [transport] })
    await next(socket, 'connect')
    const id = socket.id
    // Nothing is cut: a poll held now, a quiet stream or an open WebSocket would go on looking
    // alive until the heartbeat window (35 s by default) ran out.
    const down = next<[string]>(socket, 'disconnect')
    navigator.onLine = false
    win.dispatchEvent(new Event('offline'))
    expect((await down)[0]).toBe('transport close')
    expect(socket.connected).toBe(false)
    const back = next(socket, 'connect')
    navigator.onLine = true
    win.dispatchEvent(new Event('online'))
    await back
    expect(socket.recovered).toBe(true)
    expect(socket.id).toBe(id)
    socket.disconnect()
  })
})

describe('the browser says it is online during an attempt that then fails', () => {
  it('starts the next attempt at once, as it does for an online event during the backoff', async () => {
    const { proxy } = await serve()
    const win = new EventTarget()
    vi.stubGlobal('addEventListener', win.addEventListener.bind(win))
    // The attempt is under way (its upgrade sent), and gets no answer: it fails after a third of
    // connectTimeout.
    proxy.ws = 'hang'
    const socket = client(proxy.url, {
      transports: ['websocket'],
      connectTimeout: 1500,
      // A backoff far longer than the test: only the online event, kept, can bring it back.
      reconnectionDelay: 60_000,
      reconnectionDelayMax: 60_000,
      randomization: 0,
    })
    const failed = next<[unknown, boolean]>(socket, 'connect_error', 5000)
    await until(() => proxy.upgrades === 1, 3000, 'the first upgrade sent')
    win.dispatchEvent(new Event('online'))
    proxy.ws = 'pass'
    const [, willRetry] = await failed
    expect(willRetry).toBe(true)
    await next(socket, 'connect', 5000)
    expect(proxy.upgrades).toBe(2)
  })
})

describe('the browser says it is online while a transport lost soon after it opened waits to resume', () => {
  it('resumes at once, as it does for an online event during a failed attempt', async () => {
    const { proxy } = await serve()
    const win = new EventTarget()
    vi.stubGlobal('addEventListener', win.addEventListener.bind(win))
    const socket = client(proxy.url, {
      transports: ['websocket'],
      // A backoff far longer than the test: only the online event can cut it short.
      reconnectionDelay: 60_000,
      reconnectionDelayMax: 60_000,
      randomization: 0,
    })
    await next(socket, 'connect')
    const id = socket.id
    // Cut long before it was up for STABLE_MS: the resume waits for the backoff.
    const waiting = next<[unknown, boolean]>(socket, 'connect_error', 5000)
    proxy.cut('websocket')
    expect((await waiting)[1]).toBe(true)
    const back = next<[string, string, string]>(socket, 'transport', 5000)
    win.dispatchEvent(new Event('online'))
    expect(await back).toEqual(['websocket', 'websocket', 'resume'])
    expect(socket.id).toBe(id)
    expect(proxy.upgrades).toBe(2)
  })
})
