// A WebSocket try is bounded as a whole by the time it is given: an upgrade answered late leaves
// its OPEN only what is left of that time, counted from the try's start, not the whole of it
// again. So a try with `connectTimeout` ends within it, and a try again after a slow middleware
// (with reconnection off, given what is left of the connect's bound) ends within the connect's.
// The proxy holds each upgrade, then lets it through and drops everything the server sends after
// it: the OPEN never comes, and the try fails at its bound.
import type { ParleyError } from '@parley/protocol'
import { afterEach, describe, expect, it, onTestFinished } from 'vitest'
import { type FaultProxy, startFaultProxy } from '../../../test/support/fault-proxy.js'
import { client, closeAll, closeClients, parleyOf, startServer, until } from './helpers.js'
import { expectMiddlewareTimeout, tryAgainAfter } from './slow-middleware-connect.js'

afterEach(async () => {
  closeClients()
  await closeAll()
})

/**
 * What the clock may add to a bound before the test calls it overrun: timers on a loaded
 * machine. Well short of the upgrade's delay, which the try outlasted its bound by.
 */
const MARGIN = 500

/**
 * A server behind the proxy. Its heartbeat is slow enough to leave a muted WebSocket open past
 * every bound here: the try fails for want of an OPEN, not by the server closing it.
 */
async function proxied(setup?: Parameters<typeof startServer>[0], options = {}): Promise<FaultProxy> {
  const server = await startServer(setup, { pingInterval: 20_000, pingTimeout: 15_000, ...options })
  const proxy = await startFaultProxy(server.port)
  onTestFinished(() => proxy.close())
  return proxy
}

describe('a WebSocket try whose upgrade is answered late and whose OPEN never comes', () => {
  it('fails within connectTimeout of its start, the upgrade included', async () => {
    // The upgrade's own wait is a third of the bound, 1500 ms: the late answer comes within it.
    // With the bound again from the upgrade on, the try lasted 1000 ms past it.
    const connectTimeout = 4500
    const proxy = await proxied()
    proxy.ws = 'mute'
    proxy.upgradeLateBy = 1000
    const began = performance.now()
    const socket = client(proxy.url, { transports: ['websocket'], reconnection: false, connectTimeout })
    const failures: [string, number][] = []
    socket.on('transport_error', (_transport, error) =>
      failures.push([error.message, performance.now() - began]),
    )
    await until(() => failures.length > 0, connectTimeout + 5000, 'the try to fail')
    const [[message, took]] = failures as [[string, number]]
    expect(message).toBe(
      `no OPEN from ${proxy.url.replace(/^http/, 'ws')}/parley/ws within ${connectTimeout} ms`,
    )
    // A bound, not a speed: not past it but for the margin, not before it (a timer may fire a
    // millisecond early).
    expect(took).toBeLessThan(connectTimeout + MARGIN)
    expect(took).toBeGreaterThan(connectTimeout - 5)
    expect(proxy.upgrades).toBe(1)
  })
})

describe('a try again after a slow middleware, with reconnection off, whose upgrade is answered late', () => {
  it('settles the connect within connectTimeout, saying the middleware was slow', async () => {
    // The first HELLO's middleware never settles: the server gives up on it after 1000 ms, and
    // from then on the proxy holds upgrades 700 ms and mutes what follows them. The try again,
    // 100 ms later (the backoff's floor, no jitter), has about 2900 ms left, 1000 ms of it for its
    // upgrade; with the whole of that again from its upgrade on, it outlasted the connect's
    // bound by 700 ms. Its middleware lets it in at once: the server opens a session and keeps
    // the WebSocket, whose OPEN the proxy drops.
    const connectTimeout = 4000
    let runs = 0
    const proxy: FaultProxy = await proxied(
      (app) =>
        parleyOf(app).use(async () => {
          if (runs++ > 0) return
          proxy.ws = 'mute'
          proxy.upgradeLateBy = 700
          await new Promise<void>(() => {})
        }),
      { handshakeTimeout: 1000 },
    )
    const began = performance.now()
    const socket = client(proxy.url, {
      transports: ['websocket'],
      connectTimeout,
      ...tryAgainAfter(100),
    })
    const transportErrors: string[] = []
    socket.on('transport_error', (transport) => transportErrors.push(transport))
    const errors: [ParleyError<string>, number][] = []
    socket.on('connect_error', (error: ParleyError<string>) =>
      errors.push([error, performance.now() - began]),
    )
    await until(() => errors.length > 0, connectTimeout + 5000, 'the connect_error')
    const [[error, took]] = errors as [[ParleyError<string>, number]]
    expect(took).toBeLessThan(connectTimeout + MARGIN)
    expect(took).toBeGreaterThan(connectTimeout - 5)
    expectMiddlewareTimeout(error, connectTimeout)
    // The try again's upgrade went through: its HELLO reached the server, whose OPEN was dropped.
    expect(runs).toBe(2)
    expect(proxy.upgrades).toBe(2)
    expect(transportErrors).toEqual([])
  })
})
