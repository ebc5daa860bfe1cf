// Fallback, upgrade, resume and restart, through a loopback proxy that breaks things on demand.
import { ParleyError } from '@parley/protocol'
import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { type FaultProxy, startFaultProxy, type WsMode } from '../../../test/support/fault-proxy.js'
import { STABLE_MS } from '../src/fallback.js'
import { FIRST_STALL_TTL, MEMORY_TTL } from '../src/memory.js'
import type { ClientOptions } from '../src/options.js'
import {
  client,
  closeClients,
  closeServer,
  memoryStorage,
  next,
  own,
  parleyOf,
  type ServerSocket,
  startServer,
  type TestServer,
  until,
} from './helpers.js'

let server: TestServer | undefined
let proxy: FaultProxy | undefined

afterEach(async () => {
  closeClients()
  await proxy?.close()
  if (server) await closeServer(server)
  server = undefined
  proxy = undefined
})

/** A server's setup that records `count` events and hands out its sockets. */
function recording() {
  const sockets: ServerSocket[] = []
  const received: number[] = []
  const serve = (app: FastifyInstance) => {
    parleyOf(app).on('connection', (socket: ServerSocket) => {
      sockets.push(socket)
      socket.on('count', (n: number) => received.push(n))
    })
  }
  return { sockets, received, serve }
}

/** A server that records `count` events and hands out its sockets; a proxy in front of it. */
async function setup(options: Record<string, unknown> = {}, port = 0) {
  const { sockets, received, serve } = recording()
  server = await startServer(serve, options, port)
  proxy = await startFaultProxy(server.port)
  return { sockets, received }
}

/** The server `setup` starts, for a test side by side with others: its own (`own`), and its proxy. */
async function ownSetup(test: ReturnType<typeof own>, options: Record<string, unknown> = {}) {
  const { sockets, received, serve } = recording()
  const server = await test.server(serve, options)
  const proxy = test.later(await startFaultProxy(server.port))
  return { sockets, received, proxy }
}

/** A server of the test's own (`own`), and a proxy in front of it: for tests side by side. */
async function ownProxy(test: ReturnType<typeof own>): Promise<FaultProxy> {
  const server = await test.server()
  return test.later(await startFaultProxy(server.port))
}

const TIMEOUT = 800

/** A storage for the client's memory, with the server's stored fields (see TransportMemory). */
function storedMemory() {
  const map = new Map<string, string>()
  const key = () => [...map.keys()][0]!
  const fields = () => map.get(key())!.split('|')
  return {
    storage: {
      getItem: (k: string) => map.get(k) ?? null,
      setItem: (k: string, v: string) => void map.set(k, v),
      removeItem: (k: string) => void map.delete(k),
    },
    fields,
    /** Moves the stall back by `ms`, as if that long had passed since. */
    age(ms: number) {
      const f = fields()
      f[3] = String(Number(f[3]) - ms)
      map.set(key(), f.join('|'))
    },
  }
}

/**
 * A client of `test` behind `proxy` while the WebSocket is refused and the event stream
 * buffered: it settles on polling, the stream marked stalled once in `memory`.
 */
async function onPollingAfterAStall(
  test: ReturnType<typeof own>,
  proxy: FaultProxy,
  memory: ReturnType<typeof storedMemory>,
  options: ClientOptions,
) {
  proxy.ws = 'reject'
  proxy.sse = 'buffer'
  const socket = test.client(proxy.url, { storage: memory.storage, connectTimeout: TIMEOUT, ...options })
  await next(socket, 'connect')
  expect(socket.transport).toBe('polling')
  return socket
}

/** Counts the reconnect attempts a socket makes: a fallback must not need one. */
function attempts(socket: ReturnType<typeof client>): number[] {
  const seen: number[] = []
  socket.on('reconnect_attempt', (n: number) => seen.push(n))
  return seen
}

// Fallback happens inside the first connect attempt: no backoff, no second attempt, each
// transport tried once. (How long that takes is measured by `pnpm bench`, not here.)
describe('fallback within one connect attempt', () => {
  const modes: WsMode[] = ['reject', 'destroy', 'hang', 'mute']
  // The first tests of the file: the first handshakes of a cold process, four side by side, each
  // with its own server and proxy. On a loaded machine their event streams took over 800 ms to
  // bring their first bytes, and each client fell on to polling. What is tested is where the
  // one attempt ends, not how fast: the bound leaves the stream room (a swallowed upgrade still
  // costs a second, a mute one the whole bound).
  const COLD_TIMEOUT = 3000
  // Each mode waits out its own timeout: they go side by side, each on its own server (`own`).
  it.concurrent.for(modes)('ends on SSE when the WebSocket upgrade is %s', async (mode, context) => {
    const test = own(context)
    const proxy = await ownProxy(test)
    proxy.ws = mode
    const socket = test.client(proxy.url, { connectTimeout: COLD_TIMEOUT, upgradeDelay: 60_000 })
    const retries = attempts(socket)
    const failures: string[] = []
    socket.on('transport_error', (transport) => failures.push(transport))
    await next(socket, 'connect', COLD_TIMEOUT + 5000)
    expect(socket.transport).toBe('sse')
    expect(retries).toEqual([])
    expect(failures).toEqual(['websocket'])
    expect(proxy.upgrades).toBe(1)
  })

  it('ends on polling when WebSocket is refused and the event stream is buffered', async () => {
    await setup()
    proxy!.ws = 'reject'
    proxy!.sse = 'buffer'
    const socket = client(proxy!.url, { connectTimeout: TIMEOUT, upgradeDelay: 60_000 })
    const retries = attempts(socket)
    const failures: string[] = []
    socket.on('transport_error', (transport, error) => failures.push(`${transport}:${error.code}`))
    await next(socket, 'connect')
    expect(socket.transport).toBe('polling')
    expect(retries).toEqual([])
    // Each transport that was given up on said so, in order, before the one that worked.
    expect(failures).toEqual(['websocket:PARLEY_TRANSPORT_ERROR', 'sse:PARLEY_HANDSHAKE_TIMEOUT'])
    expect(proxy!.upgrades).toBe(1)
    expect(proxy!.streams).toBe(1)
  })

  // A proxy that swallows the upgrade costs a third of connectTimeout (at least a second), not
  // all of it; one that lets the upgrade through and then relays nothing, the whole bound.
  // Side by side too, each on its own server. Both name the endpoint (URL below), without the
  // query, which may hold credentials. The upgrade's wait is a number the application never set:
  // its message names connectTimeout, the bound it is a share of, which the application can raise.
  it.concurrent.for([
    ['hang', 3000, 'no upgrade from URL within 1000 ms (its share of connectTimeout)'],
    ['hang', 6000, 'no upgrade from URL within 2000 ms (its share of connectTimeout)'],
    // A third of it in whole milliseconds (down), where it said 1666.6666666666667.
    ['hang', 5000, 'no upgrade from URL within 1666 ms (its share of connectTimeout)'],
    ['hang', 800, 'no upgrade from URL within 800 ms (its share of connectTimeout)'],
    ['mute', 800, 'no OPEN from URL within 800 ms'],
  ] as const)(
    'gives up on a WebSocket that is %s with connectTimeout %i: %s',
    async ([mode, connectTimeout, says], context) => {
      const test = own(context)
      const proxy = await ownProxy(test)
      proxy.ws = mode
      const socket = test.client(`${proxy.url}/parley?token=secret`, { connectTimeout, upgradeDelay: 60_000 })
      const failures: string[] = []
      socket.on('transport_error', (transport, error) =>
        failures.push(`${transport} ${error.code} ${error.message}`),
      )
      await next(socket, 'connect', connectTimeout + 5000)
      expect(socket.transport).toBe('sse')
      const endpoint = `${proxy.url.replace(/^http/, 'ws')}/parley/ws`
      expect(failures).toEqual([`websocket PARLEY_HANDSHAKE_TIMEOUT ${says.replace('URL', endpoint)}`])
    },
  )

  it.each(['block', 'buffer'] as const)(
    'leaves no session behind on an event stream that is %s, once it falls back to polling',
    async (mode) => {
      const ends: string[] = []
      server = await startServer((app) => {
        parleyOf(app).on('connection', (peer: ServerSocket) => {
          peer.on('disconnect', (reason: string) => ends.push(reason))
        })
      })
      proxy = await startFaultProxy(server.port)
      proxy.ws = 'reject'
      proxy.sse = mode
      const socket = client(proxy.url, { connectTimeout: TIMEOUT, upgradeDelay: 60_000 })
      await next(socket, 'connect')
      expect(socket.transport).toBe('polling')
      // The session SSE opened (its OPEN came in the POST's answer) is said goodbye to, not left
      // for its recovery window: the application sees it end at once.
      await until(() => ends.length === 1, 2000, 'the abandoned session to end')
      expect(ends).toEqual(['client disconnect'])
      const parley = (server.app as unknown as { parley: { socketsCount: number } }).parley
      expect(parley.socketsCount).toBe(1)
    },
  )

  // The stall marks: each case waits on the client's own clocks (its probes, its connectTimeout
  // on a buffered stream) and times nothing against another, so they go side by side, each
  // with its own server, proxy and clients (`own`).
  it.concurrent('never probes an event stream that stalled while its mark holds, nor tries it first again, this time or next', async (context) => {
    const test = own(context)
    const proxy = await ownProxy(test)
    proxy.ws = 'reject'
    proxy.sse = 'buffer'
    const storage = memoryStorage()
    const options = { storage, connectTimeout: TIMEOUT, upgradeDelay: 50, upgradeDelayMax: 200 }
    const first = test.client(proxy.url, options)
    const stalled: unknown[] = []
    first.on('transport_error', (transport, error) => {
      if (transport === 'sse') stalled.push(error.details?.stalled)
    })
    await next(first, 'connect')
    expect(first.transport).toBe('polling')
    expect(stalled).toEqual([true])
    // Probes go to the WebSocket alone: a probe onto the buffered stream would move the session
    // where the client cannot read it.
    await until(() => proxy.upgrades >= 4, 5000, 'three probes')
    expect(proxy.streams).toBe(1)
    // A resume tries the stream last: the WebSocket, then polling, which works. (The first
    // transport_error is the loss of polling itself.)
    const tried: string[] = []
    first.on('transport_error', (transport) => tried.push(transport))
    const resumed = next(first, 'transport', 5000)
    proxy.cut('http')
    expect((await resumed)[0]).toBe('polling')
    expect(tried).toEqual(['polling', 'websocket'])
    expect(proxy.streams).toBe(1)
    first.disconnect()
    // Next time: on polling at once, and still no probe onto the stream.
    const upgrades = proxy.upgrades
    const second = test.client(proxy.url, options)
    await next(second, 'connect')
    expect(second.transport).toBe('polling')
    await until(() => proxy.upgrades >= upgrades + 3, 5000, 'three probes')
    expect(proxy.streams).toBe(1)
  }, 30_000)

  it.concurrent('probes an event stream again once its stall mark lapsed, on the same page', async (context) => {
    const test = own(context)
    const proxy = await ownProxy(test)
    proxy.ws = 'reject'
    proxy.sse = 'buffer'
    const map = new Map<string, string>()
    const storage = {
      getItem: (k: string) => map.get(k) ?? null,
      setItem: (k: string, v: string) => void map.set(k, v),
      removeItem: (k: string) => void map.delete(k),
    }
    const socket = test.client(proxy.url, {
      storage,
      connectTimeout: TIMEOUT,
      upgradeDelay: 50,
      upgradeDelayMax: 200,
    })
    await next(socket, 'connect')
    expect(socket.transport).toBe('polling')
    await until(() => proxy.upgrades >= 3, 5000, 'two probes')
    expect(proxy.streams).toBe(1)
    // The page has moved to a network where streams pass, and an hour went by since the stall:
    // the mark's own time says so, however recently polling opened.
    proxy.sse = 'pass'
    const [key, value] = [...map][0]!
    const fields = value.split('|')
    expect(fields[2]).toBe('sse')
    fields[3] = String(Date.now() - MEMORY_TTL)
    map.set(key, fields.join('|'))
    await until(() => socket.transport === 'sse', 5000, 'the climb to SSE')
    expect(map.get(key)!.split('|').slice(0, 3)).toEqual(['sse', expect.any(String), ''])
  })

  it.concurrent('climbs back to an event stream that stalled once, when it works after FIRST_STALL_TTL (a slow moment)', async (context) => {
    const test = own(context)
    const proxy = await ownProxy(test)
    const memory = storedMemory()
    const socket = await onPollingAfterAStall(test, proxy, memory, { upgradeDelay: 50, upgradeDelayMax: 200 })
    // The moment passes: the stream would work now, but its mark holds for a while.
    proxy.sse = 'pass'
    await until(() => proxy.upgrades >= 3, 5000, 'two probes')
    expect(proxy.streams).toBe(1)
    expect(memory.fields()[2]).toBe('sse')
    memory.age(FIRST_STALL_TTL)
    // The next probe goes on to the stream once the WebSocket fails, and the session moves to
    // it; the mark is gone.
    await until(() => socket.transport === 'sse', 5000, 'the climb to SSE')
    expect(proxy.streams).toBe(2)
    expect(memory.fields().slice(0, 3)).toEqual(['sse', expect.any(String), ''])
  })

  it.concurrent('resumes on an event stream that stalled once in its turn, after FIRST_STALL_TTL', async (context) => {
    const test = own(context)
    const proxy = await ownProxy(test)
    const memory = storedMemory()
    const socket = await onPollingAfterAStall(test, proxy, memory, { upgradeDelay: 60_000 })
    proxy.sse = 'pass'
    memory.age(FIRST_STALL_TTL)
    // Polling is lost: the resume tries the transports after it in order, the stream before
    // polling again.
    const resumed = next(socket, 'transport', 8000)
    proxy.cut('http')
    expect((await resumed).slice(0, 3)).toEqual(['sse', 'polling', 'resume'])
  })

  it.concurrent('skips an event stream that stalls again within the hour, for the hour', async (context) => {
    const test = own(context)
    const proxy = await ownProxy(test)
    const memory = storedMemory()
    const options = {
      storage: memory.storage,
      connectTimeout: TIMEOUT,
      upgradeDelay: 50,
      upgradeDelayMax: 200,
    }
    const first = await onPollingAfterAStall(test, proxy, memory, options)
    const resumed = next(first, 'transport', 8000)
    memory.age(FIRST_STALL_TTL)
    // A probe tries the stream again and finds it buffered still: the session, which the server
    // moved to the probe, resumes on polling, and the stream is marked for the hour.
    expect((await resumed).slice(0, 3)).toEqual(['polling', 'polling', 'resume'])
    expect(proxy.streams).toBe(2)
    expect(memory.fields().slice(2)).toEqual(['sse', expect.any(String), ''])
    // Well past a first stall's mark, within the hour: probes go to the WebSocket alone, and a
    // client that starts now does not try the stream either.
    memory.age(FIRST_STALL_TTL * 10)
    let upgrades = proxy.upgrades
    await until(() => proxy.upgrades >= upgrades + 3, 5000, 'three probes')
    first.disconnect()
    upgrades = proxy.upgrades
    const second = test.client(proxy.url, options)
    await next(second, 'connect')
    expect(second.transport).toBe('polling')
    await until(() => proxy.upgrades >= upgrades + 3, 5000, 'three probes')
    expect(proxy.streams).toBe(2)
  }, 30_000)

  it('starts on the remembered transport next time', async () => {
    await setup()
    proxy!.ws = 'reject'
    const storage = memoryStorage()
    const first = client(proxy!.url, { storage, upgradeDelay: 60_000 })
    await next(first, 'connect')
    expect(first.transport).toBe('sse')
    first.disconnect()
    const upgrades = proxy!.upgrades
    const second = client(proxy!.url, { storage, upgradeDelay: 60_000 })
    await next(second, 'connect')
    expect(second.transport).toBe('sse')
    expect(proxy!.upgrades).toBe(upgrades)
  })
})

/** A conversation's pace: one message each way every PACE_MS, by the clock. */
const PACE_MS = 5

/**
 * Both sides send numbered messages, one every PACE_MS, until `count` each; resolves when all
 * came. The pace is kept by the clock, not by the number of ticks: the tests side by side share
 * one event loop, which on a loaded machine ran a 5 ms interval every 100 to 400 ms, and a
 * message per tick made "a quarter sent" take over 3 s and the whole conversation 20 s. A tick
 * that comes late sends what is due, but at most an eighth of `count`: a loop held up for a
 * while still has messages going out after the fault `during` makes, not all of them before it.
 */
async function conversation(
  socket: ReturnType<typeof client>,
  peer: ServerSocket,
  received: number[],
  count: number,
  during: () => void | Promise<void>,
) {
  const got: number[] = []
  socket.on('n', (n: number) => got.push(n))
  let i = 0
  let j = 0
  const start = performance.now()
  const burst = Math.max(1, Math.floor(count / 8))
  const tick = setInterval(() => {
    const due = Math.min(count, Math.floor((performance.now() - start) / PACE_MS))
    for (let k = 0; k < burst && i < due; k++) socket.emit('count', i++)
    for (let k = 0; k < burst && j < due; k++) peer.emit('n', j++)
  }, PACE_MS)
  try {
    await until(() => i > count / 4, 3000, 'conversation started')
    await during()
    await until(() => got.length >= count && received.length >= count, 10_000, 'every message')
    await new Promise((r) => setTimeout(r, 100))
  } finally {
    // Its own, not a shared afterEach's: the tests side by side each have a conversation.
    clearInterval(tick)
  }
  expect(got).toEqual([...Array(count).keys()])
  expect(received).toEqual([...Array(count).keys()])
}

/**
 * What `socket` tells the application from now on: its `transport` events, `disconnect`s and
 * `connect`s (with the transport and whether the session was resumed), one line each.
 */
function told(socket: ReturnType<typeof client>): string[] {
  const story: string[] = []
  socket.on('transport', (now, before, why) => story.push(`transport ${before}->${now} ${why}`))
  socket.on('disconnect', (reason) => story.push(`disconnect ${reason}`))
  socket.on('connect', () =>
    story.push(`connect ${socket.transport} ${socket.recovered ? 'recovered' : 'new session'}`),
  )
  return story
}

/**
 * Waits (up to `ms`) for the session to have stepped down from `from` to `to`, as `story` (see
 * `told`) tells it, which it may in one of two ways: a `transport` event, `downgrade`; or, when
 * `to` did not answer within connectTimeout either (a machine slow at that moment: every
 * transport failed), `disconnect`, then `connect` on `to` once a later attempt got through, the
 * session resumed. Either way nothing is lost or doubled (the callers' conversation checks it).
 */
async function steppedDown(story: string[], from: string, to: string, ms: number): Promise<void> {
  const quiet = [`transport ${from}->${to} downgrade`]
  const heard = ['disconnect transport close', `connect ${to} recovered`]
  await until(() => story.length >= 2 || story[0] === quiet[0], ms, 'the step down').catch((error: Error) => {
    throw new Error(`${error.message}; the client saw: ${story.join(', ') || 'nothing'}`)
  })
  expect([quiet, heard]).toContainEqual(story)
}

describe('moving between transports mid-session', () => {
  // The cases whose bounds are a second or more, which mostly wait on the client's clocks, side
  // by side, each with its own server and proxy (`ownSetup`); then those with a bound of a few
  // hundred ms (connectTimeout 300, or the helper's 800) one at a time.
  it.concurrent('steps down to SSE when the WebSocket breaks, losing nothing', async (context) => {
    const test = own(context)
    const { sockets, received, proxy } = await ownSetup(test)
    const socket = test.client(proxy.url, { connectTimeout: 3000, upgradeDelay: 60_000 })
    await next(socket, 'connect')
    expect(socket.transport).toBe('websocket')
    const switches: unknown[] = []
    let disconnects = 0
    socket.on('transport', (...args) => switches.push(args))
    socket.on('disconnect', () => disconnects++)
    await conversation(socket, sockets[0]!, received, 200, () => {
      proxy.ws = 'destroy'
      proxy.cut('websocket')
    })
    expect(switches).toEqual([['sse', 'websocket', 'downgrade']])
    expect(disconnects).toBe(0)
    expect(socket.recovered).toBe(true)
  })

  it.concurrent('steps down to SSE, then polling, with long messages in flight, each delivered once and byte for byte', async (context) => {
    const test = own(context)
    const { sockets, proxy } = await ownSetup(test)
    const socket = test.client(proxy.url, { connectTimeout: 3000, upgradeDelay: 60_000 })
    await next(socket, 'connect')
    expect(socket.transport).toBe('websocket')
    // Long enough that the server keeps them for replay as UTF-8 bytes, in several alphabets.
    const long = (n: number) => `${n}:${'é€😀x'.repeat(5000)}`
    const got: string[] = []
    socket.on('long', (text: string) => got.push(text))
    const peer = sockets[0]!
    for (let n = 0; n < 10; n++) peer.emit('long', long(n))
    await until(() => got.length === 10, 5000, 'the first ten')
    // Ten more go out on the WebSocket as it is cut (in the same tick): the server keeps them,
    // as UTF-8 bytes, until the client resumes on SSE and they come again as text.
    proxy.ws = 'destroy'
    for (let n = 10; n < 20; n++) peer.emit('long', long(n))
    proxy.cut('websocket')
    await until(() => got.length >= 20, 10_000, 'all twenty')
    expect(socket.transport).toBe('sse')
    // Ten more go out on the event stream (kept as bytes there too) as it is cut and buffered:
    // the client steps down to polling, where what it missed comes again as text.
    const story = told(socket)
    proxy.sse = 'buffer'
    for (let n = 20; n < 30; n++) peer.emit('long', long(n))
    proxy.cut('http')
    await steppedDown(story, 'sse', 'polling', 10_000)
    await until(() => got.length >= 30, 10_000, 'all thirty')
    await new Promise((r) => setTimeout(r, 100))
    expect(got.length).toBe(30)
    for (let n = 0; n < 30; n++) expect(got[n] === long(n), `message ${n}`).toBe(true)
  }, 35_000)

  it.concurrent('steps down from SSE to polling when the stream is cut, losing nothing', async (context) => {
    const test = own(context)
    const { sockets, received, proxy } = await ownSetup(test)
    proxy.ws = 'reject'
    const socket = test.client(proxy.url, { connectTimeout: 1500, upgradeDelay: 60_000 })
    await next(socket, 'connect')
    expect(socket.transport).toBe('sse')
    const story = told(socket)
    await conversation(socket, sockets[0]!, received, 200, async () => {
      proxy.sse = 'buffer'
      proxy.cut('http')
      // Generous: a loaded machine stretches the resume. So much that polling's HELLO is not
      // answered within connectTimeout, and the step down is heard as a disconnect (see below).
      await steppedDown(story, 'sse', 'polling', 10_000)
    })
    expect(socket.recovered).toBe(true)
  }, 35_000)

  it.concurrent('is heard as a disconnect when the lesser transport too answers too late, and the session resumes with nothing lost', async (context) => {
    const test = own(context)
    const { sockets, received, proxy } = await ownSetup(test)
    proxy.ws = 'reject'
    const socket = test.client(proxy.url, { connectTimeout: 1500, upgradeDelay: 60_000 })
    await next(socket, 'connect')
    expect(socket.transport).toBe('sse')
    const story = told(socket)
    const failures: string[] = []
    socket.on('transport_error', (name, error) => {
      failures.push(`${name} ${error.code}${error.details?.stalled ? ' stalled' : ''}`)
      // Polling's HELLO alone is late, as on a machine slow at that moment.
      if (name === 'polling') proxy.hellos = 'pass'
    })
    await conversation(socket, sockets[0]!, received, 200, async () => {
      proxy.sse = 'buffer'
      proxy.hellos = 'late'
      proxy.lateBy = 2500
      proxy.cut('http')
      await until(() => story.length >= 2, 10_000, 'disconnect, then connect')
    })
    // The resume tried polling (its HELLO taken by the server, its answer later than
    // connectTimeout), then WebSocket (refused) and the stream (buffered): no transport worked,
    // so the session is down. The next attempt resumed it on polling. (The stream most often
    // stalls; on a loaded machine its own HELLO may be the one left unanswered.)
    expect(failures.slice(0, 4)).toEqual([
      'sse PARLEY_TRANSPORT_ERROR',
      'polling PARLEY_HANDSHAKE_TIMEOUT',
      'websocket PARLEY_TRANSPORT_ERROR',
      expect.stringMatching(/^sse PARLEY_HANDSHAKE_TIMEOUT/),
    ])
    expect(proxy.lateHellos).toBe(1)
    expect(story).toEqual(['disconnect transport close', 'connect polling recovered'])
    expect(sockets).toHaveLength(1)
  }, 35_000)

  it.concurrent('climbs back to WebSocket when it works again, losing nothing', async (context) => {
    const test = own(context)
    const { sockets, received, proxy } = await ownSetup(test)
    proxy.ws = 'reject'
    // A connect timeout a loaded machine cannot miss: the test is about the climb, not speed.
    // Every probe refused until the conversation is under way doubles the wait before the next
    // (150, 300, 600 ms): upgradeDelayMax keeps it within 600 ms however long that took.
    const socket = test.client(proxy.url, { connectTimeout: 3000, upgradeDelay: 150, upgradeDelayMax: 600 })
    await next(socket, 'connect')
    expect(socket.transport).toBe('sse')
    await conversation(socket, sockets[0]!, received, 200, async () => {
      // Waited for from the moment WebSocket works, not from the connect: the conversation's
      // start is not the climb's to pay for.
      const upgraded = next(socket, 'transport', 5000)
      proxy.ws = 'pass'
      expect(await upgraded).toEqual(['websocket', 'sse', 'upgrade'])
    })
    expect(socket.transport).toBe('websocket')
  }, 30_000)

  it.concurrent('climbs from polling to SSE once the event stream works again, the WebSocket still refused, losing nothing', async (context) => {
    const test = own(context)
    const { sockets, received, proxy } = await ownSetup(test)
    proxy.ws = 'reject'
    proxy.sse = 'block'
    const socket = test.client(proxy.url, { connectTimeout: 3000, upgradeDelay: 150 })
    // Three transports tried in turn (each given connectTimeout), not one.
    await next(socket, 'connect', 10_000)
    expect(socket.transport).toBe('polling')
    // The server restarted, say, while the client tried SSE: it works now. The first probe tries
    // the WebSocket, refused, then the stream.
    proxy.sse = 'pass'
    const upgraded = next(socket, 'transport', 10_000)
    // Awaited within the conversation: should that fail first, its own error is the test's, and
    // this one's rejection, later, must not be reported as an unhandled one of another test.
    upgraded.catch(() => {})
    // The last session: the first, opened on SSE, ended when its stream never came.
    await conversation(socket, sockets.at(-1)!, received, 200, async () => {
      expect(await upgraded).toEqual(['sse', 'polling', 'upgrade'])
    })
    expect(socket.transport).toBe('sse')
  }, 40_000)

  it.concurrent('takes an event stream answered 200 with a page (a filter that bans streams) as SSE failing: stays on polling, never climbs onto it', async (context) => {
    const test = own(context)
    const { proxy } = await ownSetup(test)
    proxy.ws = 'reject'
    proxy.sse = 'page'
    const socket = test.client(proxy.url, { connectTimeout: 3000, upgradeDelay: 50 })
    const failures: string[] = []
    socket.on('transport_error', (name, error) => failures.push(`${name}: ${error.message}`))
    const climbs: unknown[] = []
    socket.on('transport', (now) => now !== 'polling' && climbs.push(now))
    // Three transports tried in turn (each given connectTimeout), not one.
    await next(socket, 'connect', 10_000)
    // Taken for a stream (its first bytes came), the page ended at once: the client went back
    // down to polling, and climbed onto it again after every upgradeDelay, for good.
    expect(socket.transport).toBe('polling')
    expect(failures).toContain('sse: not an event stream')
    // Three probes more, each turned away by the page.
    const streams = proxy.streams
    await until(() => proxy.streams >= streams + 3, 5000, 'three more probes of the event stream')
    expect(climbs).toEqual([])
    // (A probe's handshake moves the session onto it: polling then resumes.)
    await until(() => socket.transport === 'polling', 5000, 'the session on polling')
  }, 25_000)

  it.concurrent('takes an event stream whose content type a proxy wrote in other letter case (Text/Event-Stream) for the stream it is', async (context) => {
    const test = own(context)
    const { sockets, received, proxy } = await ownSetup(test)
    proxy.sse = 'recase'
    const socket = test.client(proxy.url, { transports: ['sse'], connectTimeout: 3000 })
    const failures: string[] = []
    socket.on('transport_error', (name, error) => failures.push(`${name}: ${error.message}`))
    await next(socket, 'connect')
    expect(socket.transport).toBe('sse')
    expect(failures).toEqual([])
    // Read as the stream it is: events come down it, in order.
    await conversation(socket, sockets.at(-1)!, received, 20, () => {})
  })

  it.concurrent('probes after upgradeDelay again once connect() starts anew, whatever the probes before it did', async (context) => {
    const test = own(context)
    const { proxy } = await ownSetup(test)
    proxy.ws = 'reject'
    // Each failed probe doubles the wait before the next: 60, 120, 240, 480, 960, 1920, then
    // 3840 ms. A probe begins by asking for auth: when it begins is what is timed, not how long
    // the upgrade then takes (a tenth of a second on an idle machine, seconds on a loaded one).
    const probes: number[] = []
    const auth = () => {
      probes.push(performance.now())
      return 'token'
    }
    const socket = test.client(proxy.url, {
      connectTimeout: 3000,
      upgradeDelay: 60,
      upgradeDelayMax: 60_000,
      auth,
    })
    // Neither connect is timed: a loaded machine may take seconds, a try or two failing.
    await next(socket, 'connect', 10_000)
    expect(socket.transport).toBe('sse')
    // The first connect's upgrade, then six probes, all refused.
    await until(() => proxy.upgrades >= 7, 10_000, 'six failed probes')
    socket.disconnect()
    proxy.ws = 'pass'
    socket.connect()
    await next(socket, 'connect', 10_000)
    const connected = performance.now()
    // The remembered transport first.
    expect(socket.transport).toBe('sse')
    expect(await next(socket, 'transport', 10_000)).toEqual(['websocket', 'sse', 'upgrade'])
    // A fresh start probes after upgradeDelay, not after the old connection's doubled wait: its
    // probe (the first auth asked since the connect) began well within those 3840 ms.
    const probed = probes.find((at) => at >= connected)
    expect(probed! - connected).toBeLessThan(3000)
  }, 45_000)

  it('blames no transport for an upgrade probe whose auth never settles: says so once, then probes WebSocket again, not SSE', async () => {
    server = await startServer(() => {})
    // The first probe's auth hangs, as a token fetch that never answers would: the first asked
    // after the connect (a loaded machine may take the connect more than one try).
    let n = 0
    let hangAt = Number.POSITIVE_INFINITY
    const auth = () => (++n === hangAt ? new Promise<never>(() => {}) : Promise.resolve({ n }))
    const socket = client(server.url, {
      transports: ['polling', 'websocket', 'sse'],
      auth,
      connectTimeout: 300,
      upgradeDelay: 100,
    })
    const errors: string[] = []
    socket.on('error', (error) => errors.push(`${error.code}: ${error.message}`))
    await next(socket, 'connect')
    // The probe begins upgradeDelay after the connect: its auth is the next one asked.
    hangAt = n + 1
    expect(socket.transport).toBe('polling')
    // Counted against WebSocket, the hang would send the climb on to SSE at once (asking again).
    expect(await next(socket, 'transport', 3000)).toEqual(['websocket', 'polling', 'upgrade'])
    expect(errors).toEqual(['PARLEY_HANDSHAKE_TIMEOUT: no auth within 300 ms'])
    expect(n).toBe(hangAt + 1)
  })

  it('stops climbing from a transport whose upgrade probe finds auth refusing: says so once, the session goes on', async () => {
    const { sockets } = await setup()
    let n = 0
    const auth = () => {
      if (++n === 2) throw new Error('token expired')
      return { n }
    }
    const socket = client(proxy!.url, {
      transports: ['sse', 'websocket'],
      auth,
      upgradeDelay: 20,
      upgradeDelayMax: 20,
    })
    const errors: unknown[] = []
    socket.on('error', (error) => errors.push([error.code, error.message]))
    const moves: unknown[] = []
    socket.on('transport', (...args) => moves.push(args))
    await next(socket, 'connect')
    expect(socket.transport).toBe('sse')
    await until(() => errors.length > 0, 3000, 'the refused probe')
    // Ten probe waits: counted as a failed probe, auth would have been asked several times more.
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(errors).toEqual([['PARLEY_REFUSED', 'auth: token expired']])
    expect(n).toBe(2)
    expect(moves).toEqual([])
    // The session is untouched: a resume asks for auth again, and the climb starts anew from it.
    expect(socket.connected).toBe(true)
    proxy!.cut('all')
    await until(() => moves.length > 0, 5000, 'the resume or the upgrade')
    await until(() => socket.transport === 'websocket', 5000, 'the climb after the resume')
    expect(sockets).toHaveLength(1)
  })

  it("gives an upgrade probe's error the application's own ParleyError from its auth untouched, and stops climbing", async () => {
    server = await startServer(() => {})
    const own = new ParleyError('TOKEN_EXPIRED', 'log in again', { details: { user: 'u-1' } })
    let n = 0
    const auth = () => {
      if (++n === 2) throw own
      return { n }
    }
    const socket = client(server.url, {
      transports: ['sse', 'websocket'],
      auth,
      upgradeDelay: 20,
      upgradeDelayMax: 20,
    })
    const errors: unknown[] = []
    socket.on('error', (error) => errors.push(error))
    await next(socket, 'connect')
    expect(socket.transport).toBe('sse')
    await until(() => errors.length > 0, 3000, 'the refused probe')
    // Ten probe waits: a probe asked for auth again would have called it once more.
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(errors).toHaveLength(1)
    expect(errors[0]).toBe(own)
    // Nothing added to it: no `details.transport`, no `details.refused`.
    expect(own.details).toEqual({ user: 'u-1' })
    expect(n).toBe(2)
    expect([socket.connected, socket.transport]).toEqual([true, 'sse'])
  })

  it('blames no transport for an auth that never settles: tries the same one again after the backoff', async () => {
    server = await startServer(() => {})
    // The first two calls hang, as a token fetch that never answers would.
    let n = 0
    const auth = () => (++n <= 2 ? new Promise<never>(() => {}) : Promise.resolve({ n }))
    const socket = client(server.url, { auth, connectTimeout: 300, reconnectionDelay: 50 })
    const events: string[] = []
    socket.on('transport_error', (name, error) => events.push(`transport_error:${name}:${error.code}`))
    socket.on('connect_error', (error, willRetry) => events.push(`connect_error:${error.code}:${willRetry}`))
    await next(socket, 'connect', 5000)
    // Each attempt asked for auth once, not once per transport, and none stepped down.
    expect(events).toEqual([
      'connect_error:PARLEY_HANDSHAKE_TIMEOUT:true',
      'connect_error:PARLEY_HANDSHAKE_TIMEOUT:true',
    ])
    expect(n).toBe(3)
    expect(socket.transport).toBe('websocket')
  })

  it('a probe the server took that then fails, and a resume that finds nothing: disconnect says transport close, not the reason of an older loss', async () => {
    await setup()
    proxy!.ws = 'reject'
    const socket = client(proxy!.url, {
      transports: ['websocket', 'sse'],
      connectTimeout: 1000,
      upgradeDelay: 300,
      upgradeDelayMax: 300,
    })
    const reasons: string[] = []
    socket.on('disconnect', (reason) => reasons.push(reason))
    await next(socket, 'connect')
    expect(socket.transport).toBe('sse')
    // An older loss: the server went silent (its heartbeat window is 2 s here); the session resumed.
    const silent = next(socket, 'transport_error', 5000)
    const release = proxy!.hold()
    expect((await silent)[1]).toMatchObject({ message: expect.stringContaining('nothing from the server') })
    release()
    await until(() => socket.connected, 5000, 'the resume after the silence')
    // Now the WebSocket upgrades but brings nothing back: the server takes the probe (MOVED on the
    // stream), whose OPEN never comes. Then nothing gets through.
    proxy!.ws = 'mute'
    await until(() => !socket.connected, 5000, 'the probe taken by the server')
    proxy!.offline = true
    proxy!.cut('all')
    await until(() => reasons.length > 0, 5000, 'the session down')
    expect(reasons).toEqual(['transport close'])
  }, 30_000)

  it('resumes after a network cut and gets what the server sent meanwhile, once, in order', async () => {
    const { sockets } = await setup()
    const socket = client(proxy!.url, { transports: ['websocket'] })
    const got: number[] = []
    socket.on('n', (n: number) => got.push(n))
    await next(socket, 'connect')
    proxy!.ws = 'destroy'
    const down = next(socket, 'disconnect')
    proxy!.cut('websocket')
    expect(await down).toEqual(['transport close'])
    for (let n = 0; n < 5; n++) sockets[0]!.emit('n', n)
    proxy!.ws = 'pass'
    await next(socket, 'connect', 5000)
    expect(socket.recovered).toBe(true)
    await until(() => got.length >= 5, 2000, 'missed messages')
    expect(got).toEqual([0, 1, 2, 3, 4])
  })
})

// disconnect() during a WebSocket probe: the server holds the session on the transport in use
// or, once it took the probe, on the probe; a goodbye on the other one is refused or lost.
describe.each(['sse', 'polling'] as const)('disconnect() while upgrading from %s', (from) => {
  /** A server that records how its sessions end, with `use` as its middleware. */
  async function upgrading(setUp: (peer: ServerSocket) => void, use?: (peer: ServerSocket) => Promise<void>) {
    const ends: string[] = []
    server = await startServer((app) => {
      const parley = parleyOf(app)
      if (use) parley.use(use)
      parley.on('connection', (peer: ServerSocket) => {
        peer.on('disconnect', (reason: string) => ends.push(reason))
        setUp(peer)
      })
    })
    const count = () => (server!.app as unknown as { parley: { socketsCount: number } }).parley.socketsCount
    return { ends, count }
  }
  // The non-duplex transport first: the client connects on it, then probes the WebSocket.
  const opts = { transports: [from, 'websocket' as const], upgradeDelay: 100 }

  it('ends the session at once when the server already took the probe', async () => {
    let socket: ReturnType<typeof client> | undefined
    const { ends, count } = await upgrading((peer) => {
      // The server has just attached the probe and sent OPEN on it: the client gives up before
      // that OPEN reaches it (a microtask runs before any I/O), so its goodbye on the transport
      // it was using comes after the switch.
      peer.on('transport', (now: string) => {
        if (now === 'websocket') queueMicrotask(() => socket!.disconnect())
      })
    })
    socket = client(server!.url, opts)
    await next(socket, 'connect')
    expect(socket.transport).toBe(from)
    await next(socket, 'disconnect')
    // Not after the server's recovery window (two minutes): the client said goodbye.
    await until(() => ends.length === 1, 2000, 'the session to end')
    expect(ends).toEqual(['client disconnect'])
    expect(count()).toBe(0)
  })

  it('ends the session at once while the server checks the probe', async () => {
    let probing: () => void = () => {}
    const checking = new Promise<void>((resolve) => {
      probing = resolve
    })
    // The middleware runs again for the probe's HELLO: slow there, the client gives up while
    // the server still holds the session on the transport in use.
    const { ends, count } = await upgrading(
      () => {},
      async (peer) => {
        if ((peer.handshake as unknown as { transport: string }).transport !== 'websocket') return
        probing()
        await new Promise((resolve) => setTimeout(resolve, 100))
      },
    )
    const socket = client(server!.url, opts)
    const seen: string[] = []
    for (const event of ['connect', 'disconnect', 'transport', 'connect_error'])
      socket.on(event, () => seen.push(event))
    await checking
    socket.disconnect()
    await until(() => ends.length === 1, 2000, 'the session to end')
    expect(ends).toEqual(['client disconnect'])
    // The probe, answered with the session's CLOSE, tells the application nothing more.
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(seen).toEqual(['connect', 'disconnect'])
    expect(count()).toBe(0)
  })
})

// The server takes the probe: MOVED on the transport in use, OPEN on the probe. A POST of the
// transport in use whose body comes after that is refused (400 PARLEY_TRANSPORT_MISMATCH), and
// its answer may reach the client before MOVED or OPEN do (another path, a slower one).
describe.each(['sse', 'polling'] as const)('a POST on %s refused as the server takes the probe', (from) => {
  it('waits for the probe, and what that POST carried comes once, on the WebSocket', async () => {
    const { sockets, received } = await setup()
    proxy!.ws = 'reject'
    if (from === 'polling') proxy!.sse = 'block'
    // Looks at the answers, changes nothing.
    let refused = 0
    const fetchAndCount = async (url: RequestInfo | URL, init?: RequestInit) => {
      const res = await fetch(url, init)
      if (res.status === 400 && init?.method === 'POST') refused++
      return res
    }
    const socket = client(proxy!.url, { connectTimeout: 3000, upgradeDelay: 300, fetch: fetchAndCount })
    await next(socket, 'connect', 5000)
    expect(socket.transport).toBe(from)
    const story: string[] = []
    socket.on('transport', (now, before, why) => story.push(`transport ${before}->${now} ${why}`))
    socket.on('disconnect', (reason) => story.push(`disconnect ${reason}`))
    socket.on('connect_error', (error) => story.push(`connect_error ${error.code}`))
    // (On the way to polling, the SSE handshake whose stream was blocked opened a session too.)
    const peer = sockets.at(-1)!
    peer.on('echo', (n: number, ack: (n: number) => void) => ack(n))
    // From now on what the server sends on the WebSocket and the downstream waits: MOVED and
    // the probe's OPEN come after the answer to the POST below.
    const release = proxy!.hold()
    proxy!.ws = 'pass'
    let reply: Promise<unknown> | undefined
    await new Promise<void>((resolve) =>
      peer.on('transport', (now: string) => {
        if (now !== 'websocket') return
        // The server has just taken the probe: this POST, on the transport in use, comes after.
        socket.emit('count', 1)
        socket.emit('count', 2)
        reply = socket.emitWithAck('echo', 3)
        resolve()
      }),
    )
    await until(() => refused > 0 && !socket.connected, 3000, 'the refused POST')
    release()
    expect(await reply).toBe(3)
    await until(() => received.length >= 2, 3000, 'the emits')
    await new Promise((r) => setTimeout(r, 100))
    expect(story).toEqual([`transport ${from}->websocket upgrade`])
    expect(socket.transport).toBe('websocket')
    expect(received).toEqual([1, 2])
  })
})

/** The server's recovery window there, and so how long it answers a resume with the CLOSE after. */
const WINDOW = 5000
/** The client's wait before its one attempt there: fake time only, the test fires it. */
const BACKOFF = 600_000

describe('attempts used up', () => {
  it("a resume answered with the ended session's CLOSE says willRetry false, then reconnect_failed", async ({
    onTestFinished,
  }) => {
    // The client's one attempt must reach the server after it ended the lost session (its
    // recovery window over, on the timers) and while it still answers a resume with its CLOSE
    // (as long again, on the monotonic clock). Neither is left to the pace of the timers, which a
    // loaded machine slows: the test moves them on until the server has ended the session, then
    // fires the client's backoff, far past anything else pending; the attempt then has a whole
    // window of real time to land.
    const { sockets } = await setup({ recovery: { window: WINDOW } })
    // Timers that keep real time, but can be hurried. The server's timers are in this process
    // too, so its clock moves with the client's.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'], shouldAdvanceTime: true })
    onTestFinished(() => void vi.useRealTimers())
    const socket = client(proxy!.url, {
      transports: ['websocket'],
      reconnectionAttempts: 1,
      reconnectionDelay: BACKOFF,
      reconnectionDelayMax: BACKOFF,
      randomization: 0,
    })
    await next(socket, 'connect')
    // Up for STABLE_MS (the client's timer, set before 'connect', fires): the loss below resumes
    // at once, and backoff starts over.
    await vi.advanceTimersByTimeAsync(STABLE_MS)
    let ended = false
    sockets[0]!.on('disconnect', () => {
      ended = true
    })
    const seen: string[] = []
    socket.on('disconnect', (reason) => seen.push(`disconnect ${reason}`))
    socket.on('connect_error', (error, willRetry) => seen.push(`connect_error ${error.code} ${willRetry}`))
    socket.on('reconnect_attempt', (n) => seen.push(`reconnect_attempt ${n}`))
    socket.on('reconnect_failed', () => seen.push('reconnect_failed'))
    socket.on('connect', () => seen.push('connect'))
    proxy!.offline = true
    proxy!.cut('all')
    // The resume fails; the one attempt allowed waits for its backoff, and the network comes back.
    await until(() => seen.length >= 2, 3000, 'the failed resume')
    proxy!.offline = false
    // The server's recovery window runs out: the clock moved on in steps (whenever the server
    // heard of the cut), each far short of the client's backoff, until the session ended.
    const stepsEnd = performance.now() + 5000
    for (let step = 0; !ended && step < 200 && performance.now() < stepsEnd; step++)
      await vi.advanceTimersByTimeAsync(WINDOW / 4)
    expect(ended, 'the session ended by the server').toBe(true)
    expect(seen).toHaveLength(2)
    // Then the client's attempt: timer by timer, the backoff being the next one or close behind.
    for (let step = 0; seen.length < 3 && step < 10; step++) await vi.advanceTimersToNextTimerAsync()
    await next(socket, 'reconnect_failed', 5000)
    expect(seen).toEqual([
      'disconnect transport close',
      'connect_error PARLEY_TRANSPORT_ERROR true',
      'reconnect_attempt 1',
      'connect_error PARLEY_DISCONNECTED false',
      'reconnect_failed',
    ])
    expect(socket.active).toBe(false)
  })
})

describe('server restart', () => {
  it('comes back to the new server and says the session was not recovered', async () => {
    // Its clients are told to come back after 100 ms, not the default second.
    await setup({ shutdown: { retryAfter: 100, retrySpread: 0 } })
    const port = server!.port
    const socket = client(server!.url, { reconnectionDelayMax: 100 })
    await next(socket, 'connect')
    const firstId = socket.id
    const down = next(socket, 'disconnect')
    await server!.close()
    const [reason] = await down
    expect(reason).toBe('server shutdown')
    const { received } = await setup({}, port)
    socket.emit('count', 1)
    await next(socket, 'connect', 5000)
    expect(socket.recovered).toBe(false)
    expect(socket.id).not.toBe(firstId)
    await until(() => received.length === 1, 2000, 'message after restart')
  })
})
