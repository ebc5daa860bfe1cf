// After a link froze (no sign of life within the heartbeat window), each try of the resume is
// bounded by the server's pingTimeout when it is shorter than connectTimeout: a live server
// answers a HELLO within it. An `auth` that does not settle then fails the attempt within that
// bound, and the error must say which bound it was: `no auth within <n> ms` alone names a number
// the application never set, and it would look for it in connectTimeout; so would a WebSocket
// upgrade's wait, a share of that bound. Real client, real server, and a proxy that freezes the
// link.
//
// Each test mostly waits out a heartbeat window and a bound on the client's own clocks, and times
// nothing against another: they run side by side, each with its own server, proxy and client,
// closed by its own `onTestFinished` (`own`).

import type { ParleyError } from '@parley/protocol'
import { expect, it } from 'vitest'
import { startFaultProxy } from '../../../test/support/fault-proxy.js'
import { startTcpProxy } from '../../../test/support/tcp-proxy.js'
import type { Socket } from '../src/socket.js'
import { next, own, parleyOf, until } from './helpers.js'

/**
 * The first connect's bound: it is not what these tests time, and four servers, proxies and
 * clients starting side by side on a loaded machine take seconds, a try or two failing on the way.
 */
const CONNECTED_WITHIN = 10_000

/**
 * Waits for the first connect of a client with reconnection off, starting it again each time its
 * one attempt fails, at most three times more, within CONNECTED_WITHIN in all. The server's
 * handshakeTimeout, short for the resume's sake, bounds the wait for the WebSocket's HELLO too: a
 * starved client sends it late (`no HELLO within 200 ms`), which fails the WebSocket, its only
 * transport, and with it the attempt. Not what the test is about; the resume's is.
 */
async function connectedAtLast(socket: Socket): Promise<void> {
  let again = 0
  await until(
    () => {
      if (!socket.active && again < 3) {
        again++
        socket.connect()
      }
      return socket.connected
    },
    CONNECTED_WITHIN,
    'the first connect',
  )
}

it.concurrent('says an auth that outlasts a frozen resume was bounded by the server’s pingTimeout', async (context) => {
  const test = own(context)
  const server = await test.server(undefined, { pingInterval: 1200, pingTimeout: 1000 })
  const proxy = test.later(await startTcpProxy(server.port))
  let asked = 0
  let frozen = false
  const socket = test.client(proxy.url, {
    transports: ['websocket'],
    connectTimeout: 3000,
    // The HELLOs before the freeze get their auth (a loaded machine may need more than one try
    // to connect); the resume's never settles.
    auth: () => {
      asked++
      return frozen ? new Promise<string>(() => {}) : 'token'
    },
  })
  await next(socket, 'connect', CONNECTED_WITHIN)
  const errors: ParleyError<string>[] = []
  socket.on('connect_error', (error) => errors.push(error))
  const before = asked
  frozen = true
  proxy.freeze()
  await until(() => errors.length > 0, 10_000, 'the resume to fail')
  // The first resume's auth (and, after the backoff, maybe the next one's).
  expect(asked).toBeGreaterThan(before)
  expect(errors[0]!.code).toBe('PARLEY_HANDSHAKE_TIMEOUT')
  expect(errors[0]!.message).toBe("no auth within 1000 ms (the server's pingTimeout)")
}, 25_000)

it.concurrent('says a frozen resume the server’s slow middleware used up was bounded by its pingTimeout', async (context) => {
  const test = own(context)
  let runs = 0
  let frozen = false
  const server = await test.server(
    (app) => {
      // The resume's run outlives the server's handshakeTimeout: answered PARLEY_HANDSHAKE_TIMEOUT
      // with `details.middleware`, then the client's pause takes what is left of the bound. The
      // runs before the freeze are quick (a loaded machine may need more than one try to connect).
      parleyOf(app).use(async () => {
        runs++
        if (frozen) await new Promise((resolve) => setTimeout(resolve, 600))
      })
    },
    { pingInterval: 1200, pingTimeout: 1000, handshakeTimeout: 200 },
  )
  const proxy = test.later(await startTcpProxy(server.port))
  const socket = test.client(proxy.url, {
    transports: ['websocket'],
    // The first connect's one attempt tries again until this has passed, which a loaded machine
    // needs; the resume's try is still bounded by the server's pingTimeout, the shorter.
    connectTimeout: 9000,
    // One attempt; its pause after the slow middleware is longer than what is left of the bound.
    reconnection: false,
    reconnectionDelay: 5000,
    randomization: 0,
  })
  await connectedAtLast(socket)
  const errors: ParleyError<string>[] = []
  socket.on('connect_error', (error) => errors.push(error))
  const before = runs
  frozen = true
  proxy.freeze()
  await until(() => errors.length > 0, 10_000, 'the resume to fail')
  expect(runs).toBeGreaterThan(before)
  expect(errors[0]!.code).toBe('PARLEY_HANDSHAKE_TIMEOUT')
  expect(errors[0]!.details).toEqual({ middleware: true })
  expect(errors[0]!.message).toBe("no OPEN within 1000 ms (the server's pingTimeout)")
}, 25_000)

it.concurrent('says a frozen resume’s HELLO left unanswered was bounded by the server’s pingTimeout', async (context) => {
  const test = own(context)
  const server = await test.server(undefined, { pingInterval: 1200, pingTimeout: 1000 })
  const faults = test.later(await startFaultProxy(server.port))
  const socket = test.client(faults.url, { transports: ['polling'], connectTimeout: 3000 })
  await next(socket, 'connect', CONNECTED_WITHIN)
  // From here on: a try of the first connect that failed on a loaded machine is not the loss.
  const errors: ParleyError<string>[] = []
  socket.on('transport_error', (_name, error) => errors.push(error))
  // Nothing comes down any more (the heartbeat gives up), and the resume's HELLO is answered
  // later than the server's pingTimeout.
  faults.hellos = 'late'
  faults.lateBy = 3000
  const release = faults.hold()
  context.onTestFinished(release)
  await until(() => errors.length >= 2, 10_000, 'the resume’s try to fail')
  // The loss, then the try.
  expect(errors[0]!.message).toBe('nothing from the server within 2200 ms')
  expect(errors[1]!.code).toBe('PARLEY_HANDSHAKE_TIMEOUT')
  expect(errors[1]!.message).toMatch(
    /^no OPEN from http:\/\/127\.0\.0\.1:\d+\/parley\/poll within 1000 ms \(the server's pingTimeout\)$/,
  )
}, 25_000)

it.concurrent('says a frozen resume’s unanswered upgrade waited a share of the server’s pingTimeout', async (context) => {
  const test = own(context)
  // The resume's try is bounded by the pingTimeout, 3600 ms, and its upgrade waits a third of it:
  // 1200 ms, a number the application set nowhere (a third of connectTimeout would be 3000).
  const server = await test.server(undefined, { pingInterval: 1200, pingTimeout: 3600 })
  const faults = test.later(await startFaultProxy(server.port))
  const socket = test.client(faults.url, { transports: ['websocket'], connectTimeout: 9000 })
  await next(socket, 'connect', CONNECTED_WITHIN)
  // From here on: a try of the first connect that failed on a loaded machine is not the loss.
  const errors: ParleyError<string>[] = []
  socket.on('transport_error', (_name, error) => errors.push(error))
  // Nothing comes down the WebSocket any more (the heartbeat gives up), and the resume's upgrade
  // is accepted and never answered.
  faults.ws = 'hang'
  const release = faults.hold()
  context.onTestFinished(release)
  await until(() => errors.length >= 2, 15_000, 'the resume’s upgrade to fail')
  // The loss, then the try.
  expect(errors[0]!.message).toBe('nothing from the server within 4800 ms')
  expect(errors[1]!.code).toBe('PARLEY_HANDSHAKE_TIMEOUT')
  expect(errors[1]!.message).toMatch(
    /^no upgrade from ws:\/\/127\.0\.0\.1:\d+\/parley\/ws within 1200 ms \(its share of the server's pingTimeout\)$/,
  )
}, 30_000)
