// An `auth` that fails (its function throws or rejects) sends no HELLO: no transport failed, and no
// node was busy. The client says no `transport_error`, at a connect, a resume or an upgrade probe,
// and the attempt ends as a refusal (`connect_error`, no retry). The application's own ParleyError
// comes untouched with whatever code and details it was given: PARLEY_HANDSHAKE_TIMEOUT and
// `details.middleware` (what the client reads as an auth or a middleware that did not settle, tried
// again), `details.stalled` (an event stream that stalled, remembered), PARLEY_SERVER_FULL and
// PARLEY_SERVER_SHUTTING_DOWN (busy nodes, tried again unannounced after a handoff): none of that
// is read from it. Real client against the real server, over each transport.
import { ErrorCode, ParleyError, type TransportName } from '@parley/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import { startFaultProxy } from '../../../test/support/fault-proxy.js'
import { Cluster } from '../../server/test/cluster-adapter.js'
import { closeApp, type Started, startServer as startNode } from '../../server/test/helpers.js'
import { client, closeAll, next, parleyOf, startServer, until } from './helpers.js'

afterEach(closeAll)

const TRANSPORTS = ['websocket', 'sse', 'polling'] as const

/** Another transport than `transport`, tried after it. */
const after = (transport: TransportName): TransportName => (transport === 'polling' ? 'websocket' : 'polling')

/** What the application heard, in order: `transport_error`, `connect_error` and `disconnect`. */
function heard(socket: ReturnType<typeof client>): unknown[][] {
  const said: unknown[][] = []
  socket.on('transport_error', (name, error) => said.push(['transport_error', name, error]))
  socket.on('connect_error', (error, willRetry) => said.push(['connect_error', error, willRetry]))
  socket.on('disconnect', (reason) => said.push(['disconnect', reason]))
  return said
}

describe.each(TRANSPORTS)('over %s', (transport) => {
  it('says no transport_error for an auth that throws at a connect: connect_error alone, no retry', async () => {
    let handshakes = 0
    const server = await startServer((app) => parleyOf(app).use(async () => void handshakes++))
    const own = new ParleyError('LOGIN_NEEDED', 'log in first')
    let calls = 0
    const socket = client(server.url, {
      transports: [transport],
      auth: () => {
        throw ++calls === 1 ? new Error('token service away') : own
      },
    })
    const said = heard(socket)
    await until(() => said.length === 1 && !socket.active, 3000, 'the refusal')
    socket.connect()
    await until(() => said.length === 2 && !socket.active, 3000, 'the second refusal')
    expect(said.map(([event, error, willRetry]) => [event, (error as ParleyError).code, willRetry])).toEqual([
      ['connect_error', ErrorCode.REFUSED, false],
      ['connect_error', 'LOGIN_NEEDED', false],
    ])
    expect(said[1]).toEqual(['connect_error', own, false])
    expect([calls, handshakes]).toEqual([2, 0])
  })

  it("says no transport_error for an auth that throws at a resume: the lost transport's alone", async () => {
    const server = await startServer()
    const proxy = await startFaultProxy(server.port)
    let fail = false
    const socket = client(proxy.url, {
      transports: [transport],
      auth: () => {
        if (fail) throw new Error('token expired')
        return { token: 't' }
      },
    })
    try {
      await next(socket, 'connect')
      const said = heard(socket)
      fail = true
      // Offline: a polling client's next request fails too (a cut alone, it sends another).
      proxy.offline = true
      proxy.cut('all')
      await until(() => said.length >= 3 && !socket.active, 8000, 'the resume to end')
      const losses = said.filter(([event]) => event === 'transport_error')
      // The loss of the transport in use, said once (a WebSocket's close, a stream's end, a poll's
      // failure); nothing of the resume's auth.
      expect(losses.length).toBeGreaterThanOrEqual(1)
      for (const [, name, error] of losses) {
        expect(name).toBe(transport)
        expect((error as ParleyError).code).not.toBe(ErrorCode.REFUSED)
      }
      const [last, end] = said.slice(-2) as [unknown[], unknown[]]
      expect(last).toEqual(['disconnect', 'transport close'])
      expect([end[0], (end[1] as ParleyError).code, (end[1] as ParleyError).message, end[2]]).toEqual([
        'connect_error',
        ErrorCode.REFUSED,
        'auth: token expired',
        false,
      ])
    } finally {
      socket.disconnect()
      await proxy.close()
    }
  })

  it("ends the attempt as a refusal for the application's own error coded PARLEY_HANDSHAKE_TIMEOUT: no retry", async () => {
    const server = await startServer()
    // What the server says of its handshake middleware that did not settle in time.
    const own = new ParleyError(ErrorCode.HANDSHAKE_TIMEOUT, 'token service too slow', {
      details: { middleware: true },
    })
    let calls = 0
    const socket = client(server.url, {
      transports: [transport],
      auth: () => {
        calls++
        throw own
      },
    })
    const said = heard(socket)
    await until(() => said.length > 0, 3000, 'the refusal')
    expect(said).toEqual([['connect_error', own, false]])
    await until(() => !socket.active, 2000, 'the client to stop')
    expect(calls).toBe(1)
    expect(own.details).toEqual({ middleware: true })
  })

  it("remembers no stall of the transport for the application's own error saying `stalled`", async () => {
    const server = await startServer()
    const own = new ParleyError('LOGIN_NEEDED', 'log in first', { details: { stalled: true } })
    let calls = 0
    const socket = client(server.url, {
      transports: [transport, after(transport)],
      auth: () => {
        if (++calls === 1) throw own
        return { token: 't' }
      },
    })
    expect(await next(socket, 'connect_error')).toEqual([own, false])
    await until(() => !socket.active, 2000, 'the client to stop')
    // Remembered as stalled, the transport would be tried last.
    socket.connect()
    await next(socket, 'connect')
    expect(socket.transport).toBe(transport)
  })
})

describe.each([
  ['sse', 'websocket'],
  ['polling', 'websocket'],
  ['polling', 'sse'],
] as const)('an upgrade probe from %s to %s', (from, to) => {
  it("says no transport_error for an auth that throws, and the application's own error stops the climb whatever it says", async () => {
    const server = await startServer()
    // A middleware's PARLEY_HANDSHAKE_TIMEOUT (read as an auth that never settled, the climb
    // went on), and a stalled stream (the probed transport, marked, was never probed again).
    const own = new ParleyError(ErrorCode.HANDSHAKE_TIMEOUT, 'token service too slow', {
      details: { middleware: true, stalled: true },
    })
    let calls = 0
    let fail = true
    const socket = client(server.url, {
      transports: [from, to],
      auth: () => {
        if (++calls === 2 && fail) throw own
        return { n: calls }
      },
      upgradeDelay: 20,
      upgradeDelayMax: 20,
    })
    const said = heard(socket)
    const errors: unknown[] = []
    socket.on('error', (error) => errors.push(error))
    const moves: unknown[] = []
    socket.on('transport', (...args) => moves.push(args))
    await next(socket, 'connect')
    expect(socket.transport).toBe(from)
    await until(() => errors.length > 0, 3000, 'the refused probe')
    // Ten probe waits: a probe after it would have asked for auth again.
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(errors).toEqual([own])
    expect(errors[0]).toBe(own)
    expect(calls).toBe(2)
    expect([said, moves, socket.transport]).toEqual([[], [], from])
    expect(own.details).toEqual({ middleware: true, stalled: true })
    // A fresh start climbs to the transport probed: the error did not mark it stalled.
    fail = false
    socket.disconnect()
    socket.connect()
    await next(socket, 'connect')
    await until(() => socket.transport === to, 3000, 'the climb')
  })
})

describe.each(TRANSPORTS)('a resume over %s after a handoff', (transport) => {
  let nodes: Started[] = []
  afterEach(async () => {
    await Promise.all(nodes.map((node) => closeApp(node.app)))
    nodes = []
  })

  it.each([
    ['PARLEY_SERVER_FULL', () => new ParleyError(ErrorCode.SERVER_FULL, 'too many tabs')],
    ['PARLEY_SERVER_SHUTTING_DOWN', () => new ParleyError(ErrorCode.SERVER_SHUTTING_DOWN, 'signed out')],
    ['a plain Error', () => new Error('token expired')],
  ])('ends at once, with no quiet time, when the auth of the resume throws %s', async (_, make) => {
    // Two nodes sharing sessions; the client on the first, which drains: CLOSE 'server handoff'.
    // Its resume asks for auth first, and no node is reached: the second need not be behind a
    // balancer. The session is never claimed: the drain waits out a short handoff timeout.
    const cluster = new Cluster({ handoff: true })
    const options = { handoff: { timeout: 500, retrySpread: 0 } }
    const a = await startNode({ adapter: cluster.adapter('a'), ...options })
    const b = await startNode({ adapter: cluster.adapter('b'), ...options })
    nodes.push(a, b)
    const thrown = make()
    let fail = false
    let calls = 0
    const socket = client(a.base, {
      transports: [transport],
      auth: () => {
        calls++
        if (fail) throw thrown
        return { token: 't' }
      },
    })
    await next(socket, 'connect')
    const said = heard(socket)
    fail = true
    const drained = a.app.close()
    // Within the quiet time (10 s and more), a busy node's refusal is tried again unannounced.
    await until(() => said.length >= 2, 3000, 'the refusal')
    const [down, [event, error, willRetry]] = said as [unknown[], unknown[]]
    expect(down).toEqual(['disconnect', 'transport close'])
    expect([event, willRetry]).toEqual(['connect_error', false])
    if (thrown instanceof ParleyError) expect(error).toBe(thrown)
    else expect((error as ParleyError).code).toBe(ErrorCode.REFUSED)
    await until(() => !socket.active, 2000, 'the client to stop')
    expect([said.length, calls]).toEqual([2, 2])
    await drained
  })
})
