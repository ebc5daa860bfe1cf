// The client's session against the real server, over each transport: a packet the client must
// refuse, a link that freezes without closing, a server that does not know the session, and
// a server request nobody listens to.
import { ErrorCode, type ParleyError, prepareEvent, type TransportName } from '@parley/protocol'
import type { ParleyServer } from '@parley/server'
import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { startFaultProxy } from '../../../test/support/fault-proxy.js'
import { startRoundRobin } from '../../../test/support/round-robin.js'
import { startTcpProxy } from '../../../test/support/tcp-proxy.js'
import { STABLE_MS } from '../src/fallback.js'
import type { Socket } from '../src/socket.js'
import {
  client,
  closeClients,
  closeServer,
  next,
  own,
  pacedFetch,
  startServer,
  type TestServer,
  until,
} from './helpers.js'

const TRANSPORTS = ['websocket', 'sse', 'polling'] as const
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const servers: TestServer[] = []
const cleanups: (() => Promise<void>)[] = []

afterEach(async () => {
  closeClients()
  for (const cleanup of cleanups.splice(0)) await cleanup()
  for (const server of servers.splice(0)) await closeServer(server)
})

type Parley = ParleyServer
type ServerSocket = Parameters<Parameters<Parley['on']>[1]>[0]
const parleyOf = (app: FastifyInstance) => (app as unknown as { parley: Parley }).parley

/** A server that records its sockets, their resumes and their ends; closed after each test. */
async function serve(options: Record<string, unknown> = {}, port = 0) {
  return recorded(async (setup) => {
    const server = await startServer(setup, options, port)
    servers.push(server)
    return server
  })
}

/** The same, closed once the test that owns it finished: for tests that run side by side. */
async function serveOwn(owner: ReturnType<typeof own>, options: Record<string, unknown> = {}) {
  return recorded((setup) => owner.server(setup, options))
}

async function recorded(start: (setup: (app: FastifyInstance) => void) => Promise<TestServer>) {
  const sockets: ServerSocket[] = []
  const resumes: (TransportName | null)[] = []
  const ends: string[] = []
  const server = await start((app) => {
    parleyOf(app).on('connection', (socket) => {
      sockets.push(socket)
      socket.on('transport', (now) => resumes.push(now))
      socket.on('disconnect', (reason) => ends.push(reason))
      socket.on('echo', (value: unknown) => socket.emit('echo', value))
    })
  })
  return { server, parley: parleyOf(server.app), sockets, resumes, ends }
}

/** What the application of one client saw. */
function watch(socket: Socket) {
  const seen = { errors: [] as ParleyError<string>[], moves: [] as string[], downs: [] as string[] }
  socket.on('error', (error) => seen.errors.push(error))
  socket.on('transport', (now, _before, why) => seen.moves.push(`${why}:${now}`))
  socket.on('disconnect', (reason) => seen.downs.push(reason))
  return seen
}

describe.each(TRANSPORTS)('over %s', (transport) => {
  it('acknowledges a packet it must refuse, tells the application, and never resumes for it', async () => {
    // WebSocket and SSE acknowledge a few packets at the next PING: it comes soon.
    const { server, parley, sockets, resumes, ends } = await serve({ pingInterval: 250 })
    const socket = client(server.url, { transports: [transport] })
    const seen = watch(socket)
    await next(socket, 'connect')
    const echoes: unknown[] = []
    socket.on('echo', (value) => echoes.push(value))
    // Another node that skipped the server's own checks: the adapter is the only way left to
    // put a name no client may take on the wire.
    const name = 'x'.repeat(300)
    parley.adapter.broadcast(
      { name, args: [1], prepared: () => prepareEvent(name, [1]) },
      { rooms: new Set(), except: new Set(), volatile: false, local: false },
    )
    sockets[0]!.emit('echo', 'after')
    // Bounded for a loaded machine (the suite runs beside many), not for speed.
    await until(() => echoes.length === 1, 10_000, 'the event after the refused one')
    expect(echoes).toEqual(['after'])
    expect(seen.errors.map((e) => [e.code, e.details?.seq])).toEqual([[ErrorCode.INVALID_EVENT_NAME, 1]])
    // Acknowledged with the rest: the server keeps nothing for a replay.
    await until(() => sockets[0]!.bufferedAmount === 0, 10_000, 'the ACK of both packets')
    // Nothing was resumed or ended for it; nothing comes back later either.
    await sleep(300)
    expect({ moves: seen.moves, downs: seen.downs, resumes, ends }).toEqual({
      moves: [],
      downs: [],
      resumes: [],
      ends: [],
    })
    expect(seen.errors).toHaveLength(1)
  }, 30_000)

  it('drops an unnumbered packet it must refuse, and tells the application', async () => {
    const { server, parley, sockets } = await serve()
    const socket = client(server.url, { transports: [transport] })
    const seen = watch(socket)
    await next(socket, 'connect')
    parley.adapter.broadcast(
      { name: 'connect', args: [], prepared: () => prepareEvent('connect', []) },
      { rooms: new Set(), except: new Set(), volatile: true, local: false },
    )
    const echoed = next(socket, 'echo')
    sockets[0]!.emit('echo', 'after')
    expect(await echoed).toEqual(['after'])
    expect(seen.errors.map((e) => [e.code, e.details?.seq])).toEqual([[ErrorCode.RESERVED_EVENT_NAME, 0]])
    expect(seen.moves).toEqual([])
  })

  it('resumes after a cut with its sid and ack: what each side sent meanwhile arrives once, in order', async () => {
    const { server, sockets, ends } = await serve()
    const proxy = await startFaultProxy(server.port)
    cleanups.push(() => proxy.close())
    const socket = client(proxy.url, { transports: [transport] })
    const seen = watch(socket)
    await next(socket, 'connect')
    await until(() => sockets.length === 1)
    const peer = sockets[0]!
    const atClient: number[] = []
    const atServer: number[] = []
    socket.on('n', (n: number) => atClient.push(n))
    peer.on('n', (n: number) => atServer.push(n))
    peer.emit('n', 0)
    socket.emit('n', 0)
    await until(() => atClient.length === 1 && atServer.length === 1, 3000, 'the first messages')
    proxy.offline = true
    proxy.cut('all')
    await until(() => seen.downs.length === 1, 8000, 'the disconnect')
    for (let n = 1; n <= 5; n++) {
      peer.emit('n', n)
      socket.emit('n', n)
    }
    proxy.offline = false
    await next(socket, 'connect', 8000)
    expect(socket.recovered).toBe(true)
    await until(() => atClient.length === 6 && atServer.length === 6, 3000, 'what was sent meanwhile')
    expect(atClient).toEqual([0, 1, 2, 3, 4, 5])
    expect(atServer).toEqual([0, 1, 2, 3, 4, 5])
    expect(ends).toEqual([])
    expect(sockets).toHaveLength(1)
  }, 35_000)

  it('hears why its session ended while it was away, and does not start another after a server disconnect', async () => {
    const { server, sockets } = await serve()
    const proxy = await startFaultProxy(server.port)
    cleanups.push(() => proxy.close())
    const socket = client(proxy.url, { transports: [transport] })
    const seen = watch(socket)
    const errors: ParleyError<string>[] = []
    socket.on('connect_error', (error) => errors.push(error))
    await next(socket, 'connect')
    await until(() => sockets.length === 1)
    proxy.offline = true
    proxy.cut('all')
    await until(() => seen.downs.length === 1, 8000, 'the disconnect')
    // The server ends the session while the client cannot hear it.
    sockets[0]!.disconnect()
    proxy.offline = false
    await until(() => errors.some((e) => e.details?.reason === 'server disconnect'), 8000, 'the reason')
    expect(errors.at(-1)).toMatchObject({ code: ErrorCode.DISCONNECTED })
    await until(() => !socket.active, 3000, 'the client to stop')
    expect(sockets).toHaveLength(1)
  }, 30_000)

  it('learns the reason its session ended from the answer to its resume (slow consumer)', async () => {
    const { server, sockets } = await serve({ maxBufferedBytes: 200_000, highWaterMark: 100_000 })
    const socket = client(server.url, { transports: [transport] })
    const seen = watch(socket)
    await next(socket, 'connect')
    await until(() => sockets.length === 1)
    // More than the limit in one go: the server cuts the session as a slow consumer.
    const big = 'x'.repeat(50_000)
    for (let i = 0; i < 5; i++) sockets[0]!.emit('echo', big)
    await until(() => seen.downs.length > 0, 8000, 'the disconnect')
    expect(seen.downs[0]).toBe('slow consumer')
  })

  it('answers a server request nobody listens to with PARLEY_NO_HANDLER, at once', async () => {
    const { server, sockets } = await serve()
    const socket = client(server.url, { transports: [transport] })
    await next(socket, 'connect')
    await until(() => sockets.length === 1)
    await expect(sockets[0]!.timeout(5000).emitWithAck('nobody')).rejects.toMatchObject({
      code: ErrorCode.NO_HANDLER,
    })
  })

  it.each([
    [
      'throws',
      () => {
        throw new Error('boom')
      },
    ],
    ['rejects', async () => Promise.reject(new Error('boom'))],
    ['acks what cannot be sent', (ack: (reply: unknown) => void) => ack(10n)],
  ])('answers a server request whose listener %s with PARLEY_HANDLER_ERROR, at once', async (_, listener) => {
    const { server, sockets } = await serve()
    const socket = client(server.url, { transports: [transport] })
    socket.on('ask', listener)
    await next(socket, 'connect')
    await until(() => sockets.length === 1)
    // The listener's error still reaches the process, as any listener's does.
    const reported: unknown[] = []
    const hear = (error: unknown) => void reported.push(error)
    process.on('uncaughtException', hear)
    process.on('unhandledRejection', hear)
    try {
      // Answered, not timed out: that would be PARLEY_ACK_TIMEOUT.
      await expect(sockets[0]!.timeout(1500).emitWithAck('ask')).rejects.toMatchObject({
        code: ErrorCode.HANDLER_ERROR,
      })
      await until(() => reported.length === 1, 1000, 'the error reported')
    } finally {
      process.off('uncaughtException', hear)
      process.off('unhandledRejection', hear)
    }
    expect(reported[0]).toBeInstanceOf(Error)
  })

  it("keeps the answers to an ended session's requests out of the next session", async () => {
    // A restart: the client's next session is on a new server, whose requests use the same ack
    // ids again. Its clients are told to come back after 100 ms, not the default second.
    const first = await serve({ shutdown: { retryAfter: 100, retrySpread: 0 } })
    const ended = new Promise<void>((resolve) => {
      first.parley.on('connection', (socket) => {
        // Answered at once: the server shuts down before its ACK, so the client still keeps
        // the answer when the session ends.
        socket.emit('ask', 'first', () => {
          first.parley.close()
          resolve()
        })
        // Answered once the next session is open.
        socket.emit('ask', 'late', () => {})
      })
    })
    // The CLOSE 'server shutdown' must reach the client. A polling client gets it in its next
    // GET, which the server waits for only as long as the client's pace allows (see pacedFetch).
    const paced = transport === 'polling' ? { fetch: pacedFetch(250) } : {}
    const socket = client(first.server.url, { transports: [transport], ...paced })
    const seen = watch(socket)
    socket.on('ask', (what: string, ack: (reply: string) => void) => {
      if (what === 'first') ack(`to ${what}`)
      else if (what === 'late') socket.once('connect', () => setTimeout(() => ack(`to ${what}`), 50))
      else setTimeout(() => ack(`to ${what}`), 400)
    })
    await ended
    await first.server.close()
    const second = await serve({}, first.server.port)
    const replies: unknown[] = []
    second.parley.on('connection', (socket) => {
      for (const what of ['new 1', 'new 2']) {
        socket
          .timeout(3000)
          .emitWithAck('ask', what)
          .then(
            (reply) => replies.push(reply),
            (error: ParleyError<string>) => replies.push(error.code),
          )
      }
    })
    await until(() => replies.length === 2, 5000, 'the replies in the second session')
    expect(seen.downs).toEqual(['server shutdown'])
    expect(replies).toEqual(['to new 1', 'to new 2'])
  })

  it('ends the wait for a request the old session got but never answered, once a new session begins', async () => {
    // A restart: the old server received the request (and acknowledged it: the client keeps it
    // no more, and will not send it again), then went away without answering. Its clients are
    // told to come back after 100 ms, not the default second.
    const first = await serve({ shutdown: { retryAfter: 100, retrySpread: 0 } })
    let got = 0
    // The server's ACK goes within 200 ms of the request (docs/protocol.md): an event sent 200
    // ms after its handler ran goes behind it on the same transport, and says it has come.
    first.parley.on('connection', (socket) =>
      socket.on('never', () => {
        got++
        setTimeout(() => socket.emit('behind the ack'), 200)
      }),
    )
    const socket = client(first.server.url, { transports: [transport] })
    const seen = watch(socket)
    await next(socket, 'connect')
    const acked = next(socket, 'behind the ack', 3000)
    const outcomes: unknown[] = []
    // Its error names the event, as those of every other end of a wait do.
    socket
      .timeout(60_000)
      .emit('never', 1, (error: ParleyError<string> | null) => outcomes.push([error?.code, error?.message]))
    await until(() => got === 1, 3000, 'the request at the old server')
    await acked
    await first.parley.close()
    await first.server.close()
    await serve({}, first.server.port)
    await until(() => outcomes.length === 1, 5000, 'the wait ended')
    expect(outcomes).toEqual([[ErrorCode.DISCONNECTED, 'event "never": session ended before the reply']])
    expect(seen.downs).toEqual(['server shutdown'])
    expect(socket.recovered).toBe(false)
  })

  it('lets a listener ack again after an ack that could not be sent', async () => {
    const { server, sockets } = await serve()
    const socket = client(server.url, { transports: [transport] })
    const thrown: unknown[] = []
    socket.on('ask', (ack: (reply: unknown) => void) => {
      try {
        ack(10n)
      } catch (error) {
        thrown.push(error)
      }
      ack('fine')
    })
    await next(socket, 'connect')
    await until(() => sockets.length === 1)
    await expect(sockets[0]!.timeout(1500).emitWithAck('ask')).resolves.toBe('fine')
    expect(thrown).toMatchObject([{ code: ErrorCode.UNSERIALIZABLE }])
  })
})

// Tests that mostly wait (out a heartbeat, a recovery window, a backoff) run side by side, each
// closing what it opened itself (`own`): the afterEach above would close the others'.
describe.concurrent.each(TRANSPORTS)('over %s, when the link is lost', (transport) => {
  it('comes back from a link that froze without closing, with only a transport event', async (context) => {
    const test = own(context)
    // The client gives up on a silent link pingInterval + pingTimeout after it last heard from
    // the server: more than STABLE_MS after the OPEN. So the link can freeze at once, and is
    // still found dead only once the transport counts as stable (both timers are the client's,
    // the shorter set first): the loss resumes at once, not after the backoff.
    const heartbeat = { pingInterval: 1200, pingTimeout: 1000 }
    expect(heartbeat.pingInterval + heartbeat.pingTimeout).toBeGreaterThan(STABLE_MS)
    const { server, sockets, ends } = await serveOwn(test, heartbeat)
    const proxy = test.later(await startTcpProxy(server.port))
    const socket = test.client(proxy.url, { transports: [transport], connectTimeout: 3000 })
    const seen = watch(socket)
    const failures: string[] = []
    socket.on('connect_error', (error) => failures.push(error.code))
    await next(socket, 'connect')
    const id = socket.id
    // Every connection the transport keeps is open and idle before the freeze: an echo both ways.
    const warm = next(socket, 'echo')
    socket.emit('echo', 'warm')
    expect(await warm).toEqual(['warm'])
    proxy.freeze()
    await until(() => seen.moves.length > 0, 10_000, 'the resume after the freeze')
    expect(seen.moves).toEqual([`resume:${transport}`])
    // Resumed at once, as from a stable transport: no attempt failed as a whole.
    expect(failures).toEqual([])
    expect(seen.downs).toEqual([])
    expect(socket.id).toBe(id)
    expect(socket.recovered).toBe(true)
    const echoed = next(socket, 'echo')
    socket.emit('echo', 'still here')
    expect(await echoed).toEqual(['still here'])
    expect(ends).toEqual([])
    expect(sockets).toHaveLength(1)
  }, 25_000)

  it('never sends a request again into a new session once its answer came, though its ACK never did', async (context) => {
    const test = own(context)
    // The server answers at once and acknowledges up to 200 ms later. The link goes down right
    // between the two, for longer than the session's recovery window: the next session is new,
    // and takes what the old one never acknowledged, but not a request the old one answered.
    // Over HTTP the server hears of the lost link only by its heartbeat: a short one ends the
    // session soon. Its first PING comes after the cut, so it cannot time out before.
    const { server, parley, ends } = await serveOwn(test, {
      recovery: { window: 300 },
      pingInterval: 500,
      pingTimeout: 500,
    })
    let handled = 0
    parley.on('connection', (socket) =>
      socket.on('order', (n: number, ack?: (reply: string) => void) => {
        handled++
        ack?.(`took ${n}`)
      }),
    )
    const proxy = test.later(await startTcpProxy(server.port))
    const socket = test.client(proxy.url, { transports: [transport] })
    await next(socket, 'connect')
    const id = socket.id
    const ackLost = proxy.cutAt('[4,1]').then(() => {
      proxy.offline = true
    })
    expect(await socket.emitWithAck('order', 1)).toBe('took 1')
    await ackLost
    await until(() => ends.length === 1, 5000, 'the end of the first session')
    proxy.offline = false
    await until(() => socket.connected && socket.id !== id, 5000, 'a new session')
    expect(socket.recovered).toBe(false)
    // Whatever the new session is sent again goes before this.
    expect(await socket.emitWithAck('order', 2)).toBe('took 2')
    expect(handled).toBe(2)
  })
})

describe.concurrent.each(['sse', 'polling'] as const)(
  'behind a balancer without session routing, over %s',
  (transport) => {
    it('backs off, and says PARLEY_UNKNOWN_SESSION, instead of looping', async (context) => {
      const test = own(context)
      const a = await serveOwn(test)
      const b = await serveOwn(test)
      const balancer = test.later(await startRoundRobin([a.server.port, b.server.port]))
      const socket = test.client(balancer.url, {
        transports: [transport],
        reconnectionDelay: 200,
        reconnectionDelayMax: 5000,
      })
      const codes: string[] = []
      socket.on('connect_error', (error) => codes.push(error.code))
      await sleep(1500)
      expect(codes).toContain(ErrorCode.UNKNOWN_SESSION)
      // Every handshake, poll and POST lands on the next node. Paced by the backoff (doubling
      // from 200 ms) that is about a dozen requests in this time; without it, hundreds.
      const requests = balancer.forwarded.reduce((sum, n) => sum + n, 0)
      expect(requests).toBeGreaterThan(0)
      expect(requests).toBeLessThan(60)
      expect(a.sockets.length + b.sockets.length).toBeLessThan(15)
    })
  },
)

describe('ack callbacks when the session ends', () => {
  it('are all called though one throws, whose error still reaches the process', async () => {
    const { server, sockets } = await serve()
    const socket = client(server.url, { transports: ['websocket'] })
    await next(socket, 'connect')
    await until(() => sockets.length === 1)
    const boom = new Error('the application failed')
    const reported: unknown[] = []
    const hear = (error: unknown) => void reported.push(error)
    process.on('uncaughtException', hear)
    try {
      const heard: unknown[] = []
      socket.timeout(10_000).emit('first', () => {
        throw boom
      })
      socket.timeout(10_000).emit('second', (err: unknown) => heard.push(err))
      // The server ends the session: the client rejects every wait, in order.
      sockets[0]!.disconnect()
      await until(() => heard.length === 1, 3000, 'the second callback')
      expect(heard[0]).toMatchObject({ code: ErrorCode.DISCONNECTED })
      await until(() => reported.length === 1, 1000, 'the error reported')
    } finally {
      process.off('uncaughtException', hear)
    }
    expect(reported).toEqual([boom])
  })
})
