// An SSE or polling transport whose first GET comes late (its OPEN slow to reach the client on a
// loaded machine or through a relaying node, a GET a browser holds back): the session waits for
// that GET up to handshakeTimeout + pingInterval + pingTimeout after the OPEN, and the timeout of
// the PING it takes runs from it. Counted from the HELLO, such a GET found the session ended (a
// new one) or detached (a resume: 400 PARLEY_TRANSPORT_MISMATCH), and a client that does not say
// HELLO again heard `disconnect`. A client written from docs/protocol.md alone (raw-client.ts),
// which answers each PING at once, against the real server. The tests wait on the server's
// clocks, each with its own server and clients: they run side by side.
import type { EventPacket, Packet } from '@parley/protocol'
import { PacketType } from '@parley/protocol'
import type { ServerSocket } from '@parley/server'
import { describe, it, type OnTestFinishedHandler } from 'vitest'
import { closeApp, sleep, startServer, until } from './helpers.js'
import { type RawClient, rawConnect } from './raw-client.js'

/** A pingTimeout that a loaded machine's answers to PING stay well within. */
const OPTIONS = { pingInterval: 200, pingTimeout: 800, handshakeTimeout: 2000 }
/** The first heartbeat after an attach: PING, then its pingTimeout. */
const HEARTBEAT = OPTIONS.pingInterval + OPTIONS.pingTimeout
/** How long the server waits for a transport's first GET. */
const BOUND = OPTIONS.handshakeTimeout + HEARTBEAT
/** A first GET this late: past the first heartbeat twice over, within the bound. */
const LATE_MS = 2 * HEARTBEAT

/**
 * A server recording its sockets, and why each ended; `connect` opens a raw client to it. Both
 * are closed when the test finishes.
 */
async function recording(finished: (fn: OnTestFinishedHandler) => void) {
  const sockets: ServerSocket[] = []
  const ended = new Map<string, string>()
  const clients: RawClient[] = []
  const started = await startServer(OPTIONS, (app) => {
    app.parley.on('connection', (socket) => {
      sockets.push(socket)
      socket.on('disconnect', (reason) => ended.set(socket.id, reason))
    })
  })
  finished(async () => {
    for (const client of clients) client.close()
    await closeApp(started.app)
  })
  const connect = async (...args: Parameters<typeof rawConnect>): Promise<RawClient> => {
    const client = await rawConnect(...args)
    clients.push(client)
    return client
  }
  return { base: started.base, sockets, ended, connect }
}

const news = (p: Packet): p is EventPacket => p.type === PacketType.EVENT && p.name === 'news'

/** The `news` events `client` received, by their argument. */
const newsOf = (client: RawClient) => client.received.filter(news).map((p) => p.args[0])

const pingsOf = (client: RawClient) => client.received.filter((p) => p.type === PacketType.PING).length

describe.concurrent.each(['sse', 'polling'] as const)('the first GET over %s', (transport) => {
  it('of a new session, late past the first heartbeat: the session lives and delivers', async ({
    onTestFinished,
    expect,
  }) => {
    const { base, sockets, ended, connect } = await recording(onTestFinished)
    const client = await connect(transport, base, {}, { firstGetAfter: sleep(LATE_MS) })
    await until(() => sockets.length === 1, 2000, 'the connection')
    const socket = sockets[0]!
    socket.emit('news', 1)
    await until(() => newsOf(client).length === 1, LATE_MS + BOUND, 'the event that waited for the GET')
    // Heartbeats after the GET, each PING answered: the session goes on as any other.
    await until(() => pingsOf(client) >= 3, 5 * HEARTBEAT, 'three PINGs')
    socket.emit('news', 2)
    await until(() => newsOf(client).length === 2, 2000, 'an event after them')
    expect(newsOf(client)).toEqual([1, 2])
    expect(ended.size).toBe(0)
    expect(socket.transport).toBe(transport)
  })

  it('of a resume, late past the first heartbeat: not refused, the events sent meanwhile delivered', async ({
    onTestFinished,
    expect,
  }) => {
    const { base, sockets, ended, connect } = await recording(onTestFinished)
    const first = await connect(transport, base)
    await until(() => sockets.length === 1, 2000, 'the connection')
    const socket = sockets[0]!
    // Gone before the resume: over polling its next GET would be taken for the resume's.
    first.close()
    const resumed = await connect(
      transport,
      base,
      { sid: first.sid, ack: 0 },
      { firstGetAfter: sleep(LATE_MS) },
    )
    expect(resumed.open.recovered).toBe(true)
    const changes: (string | null)[] = []
    socket.on('transport', (now) => changes.push(now))
    socket.emit('news', 1)
    await until(() => newsOf(resumed).length === 1, LATE_MS + BOUND, 'the event that waited for the GET')
    await until(() => pingsOf(resumed) >= 3, 5 * HEARTBEAT, 'three PINGs')
    socket.emit('news', 2)
    await until(() => newsOf(resumed).length === 2, 2000, 'an event after them')
    expect(newsOf(resumed)).toEqual([1, 2])
    // The GET was taken, the transport never let go of.
    expect(changes).toEqual([])
    expect(ended.size).toBe(0)
  })

  it('never sent, by a new session: the session ends with transport close after the bound', async ({
    onTestFinished,
    expect,
  }) => {
    const { base, sockets, ended, connect } = await recording(onTestFinished)
    await connect(transport, base, {}, { firstGetAfter: new Promise(() => {}) })
    await until(() => sockets.length === 1, 2000, 'the connection')
    await sleep(LATE_MS)
    expect(ended.size).toBe(0)
    await until(() => ended.size === 1, 3 * BOUND, 'the session to end')
    expect(ended.get(sockets[0]!.id)).toBe('transport close')
  })

  it('never sent, by a resume: the transport is let go after the bound, the session and its queue kept', async ({
    onTestFinished,
    expect,
  }) => {
    const { base, sockets, ended, connect } = await recording(onTestFinished)
    const first = await connect(transport, base)
    await until(() => sockets.length === 1, 2000, 'the connection')
    const socket = sockets[0]!
    first.close()
    const idle = await connect(
      transport,
      base,
      { sid: first.sid, ack: 0 },
      { firstGetAfter: new Promise(() => {}) },
    )
    socket.emit('news', 1)
    await sleep(LATE_MS)
    expect(socket.transport).toBe(transport)
    await until(() => socket.transport === null, 3 * BOUND, 'the transport let go')
    expect(ended.size).toBe(0)
    idle.close()
    // The recovery window holds the session and what was sent to it.
    const again = await connect(transport, base, { sid: first.sid, ack: 0 })
    expect(again.open.recovered).toBe(true)
    await until(() => newsOf(again).length === 1, 2000, 'the event kept')
    expect(newsOf(again)).toEqual([1])
  })
})
