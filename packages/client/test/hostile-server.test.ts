// Whatever a server sends, the client stays whole: it throws nothing into the page, tells the
// application through 'error' events that carry a code, and comes back to a working session
// unless the server ended it for good. The real server never sends a bad packet, so this is a
// stand-in server over each transport (the one case where a fake is the point): it opens the
// session, sends one packet, mutated or random, and then drops the transport. The client's
// resume is answered with a new session, on which a marker event must arrive.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  CloseReason,
  decodeFrame,
  decodeText,
  encodeFrame,
  encodeText,
  type Packet,
  PacketType,
  type TransportName,
  WS_SUBPROTOCOL,
} from '@parley/protocol'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WebSocketServer } from 'ws'
import { mutatedFrame, mutatedLine } from '../../../test/support/mutations.js'
import { own, until } from './helpers.js'

/** What a server sends: every type a client meets, with the fields it checks. */
const seeds: Packet[] = [
  { type: PacketType.EVENT, seq: 1, name: 'news', args: [{ text: 'hi', list: [1, { x: null }] }], ackId: 0 },
  { type: PacketType.EVENT, seq: 1, name: 'ask', args: ['bytes', new Uint8Array([1, 2, 3])], ackId: 5 },
  { type: PacketType.EVENT, seq: 0, name: 'news', args: [], ackId: 0 },
  { type: PacketType.REPLY, seq: 1, ackId: 1, args: [{ ok: true }] },
  { type: PacketType.ERROR, seq: 1, ackId: 1, code: 'APP_FAILED', message: 'no' },
  { type: PacketType.ERROR, seq: 0, ackId: 0, code: 'PARLEY_HANDLER_ERROR', message: 'oops' },
  { type: PacketType.ACK, ack: 3 },
  { type: PacketType.PING },
  { type: PacketType.PONG },
  { type: PacketType.MOVED },
  { type: PacketType.CLOSE, reason: 'server shutdown', message: 'bye', retryAfter: 20 },
  { type: PacketType.CLOSE, reason: 'server handoff', message: 'moving', retryAfter: 0 },
  { type: PacketType.CLOSE, reason: 'server disconnect', message: 'kicked' },
]
const seedLines = seeds.map((packet) => encodeText(packet))
const seedFrames = seeds
  .map((packet) => encodeFrame(packet))
  .filter((f): f is Uint8Array => f instanceof Uint8Array)

/** What a server sends: over WebSocket one message, text or binary; over SSE and polling one line. */
function messageFor(transport: TransportName): fc.Arbitrary<string | Uint8Array> {
  const line = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...seedLines) },
    { weight: 5, arbitrary: mutatedLine(seedLines) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? 'null') },
    { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
  )
  if (transport === 'websocket') {
    return fc.oneof({ weight: 5, arbitrary: line }, { weight: 1, arbitrary: mutatedFrame(seedFrames) })
  }
  // A line break would make two lines (or break the event's framing): one line at a time here.
  return line.filter((text) => !/[\r\n]/.test(text))
}

/**
 * What the client does after `data`, by the protocol: after a CLOSE `server disconnect` or
 * `client disconnect` it stays away for good; after a CLOSE with a `retryAfter` longer than a
 * run waits, it waits; after anything else it is back within the run.
 */
function after(data: string | Uint8Array): 'gone' | 'waits' | 'back' {
  const decoded = typeof data === 'string' ? decodeText(data) : decodeFrame(data)
  if (!decoded.ok || decoded.packet.type !== PacketType.CLOSE) return 'back'
  const { reason, retryAfter = 0 } = decoded.packet
  if (reason === CloseReason.SERVER_DISCONNECT || reason === CloseReason.CLIENT_DISCONNECT) return 'gone'
  return retryAfter > 1000 ? 'waits' : 'back'
}

/** The fuzz run a HELLO names (its auth `{ run }`), if it names one. */
function runOf(hello: string): number | undefined {
  const decoded = decodeText(hello)
  if (!decoded.ok || decoded.packet.type !== PacketType.HELLO) return undefined
  const { auth } = decoded.packet
  if (typeof auth !== 'object' || auth === null || Array.isArray(auth)) return undefined
  return typeof auth.run === 'number' ? auth.run : undefined
}

/**
 * Serves all three transports. The first session of each run gets OPEN, then `hostile`, and
 * then its transport drops (the WebSocket is cut, the SSE stream ends, the next poll is told
 * the session is unknown); every later session (the client's resume, or its new session) gets
 * OPEN and the marker EVENT. A HELLO that names a run before the last `next()` (a stopped run's
 * client, its request still on the way) is never that first session.
 */
function standInServer() {
  const http = createServer((req, res) => serveHttp(req, res))
  const wss = new WebSocketServer({
    server: http,
    path: '/parley/ws',
    handleProtocols: (protocols) => (protocols.has(WS_SUBPROTOCOL) ? WS_SUBPROTOCOL : false),
  })
  let sessions = 0
  let hostile: string | Uint8Array = '[2]'
  /** Fields of the next run's first OPEN in place of the usual ones. */
  let openFields: Record<string, unknown> = {}
  let firstOfRun = true
  /** How many times `next()` was called: the run its caller tells its client to name. */
  let runs = 0
  /** Sessions whose downstream has the hostile packet to send, and those that sent it. */
  const pending = new Set<string>()
  const spent = new Set<string>()
  /** Polling sessions whose marker went out: their later polls are held. */
  const markerSent = new Set<string>()

  function openSession(
    transport: TransportName,
    hello: string,
  ): { text: string; sid: string; hostile: boolean } {
    const sid = `s${++sessions}`.padEnd(21, 'x')
    const run = runOf(hello)
    const isHostile = firstOfRun && (run === undefined || run === runs)
    if (run === undefined || run === runs) firstOfRun = false
    if (isHostile) pending.add(sid)
    const open = {
      sid,
      id: `i${sessions}`.padEnd(21, 'y'),
      pingInterval: 20_000,
      pingTimeout: 20_000,
      maxPayload: 1_000_000,
      transports: [transport],
      recovered: false,
      ack: 0,
      ...(isHostile ? openFields : {}),
    }
    return { text: JSON.stringify([0, open]), sid, hostile: isHostile }
  }
  const marker = () =>
    encodeText({ type: PacketType.EVENT, seq: 1, name: 'marker', args: [sessions], ackId: 0 })

  wss.on('connection', (ws) => {
    ws.once('message', (hello) => {
      const session = openSession('websocket', String(hello))
      ws.send(session.text)
      if (session.hostile) {
        ws.send(hostile)
        setTimeout(() => ws.terminate(), 20)
      } else ws.send(marker())
    })
    ws.on('error', () => {})
  })

  function serveHttp(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://stand-in')
    const kind = { '/parley/sse': 'sse', '/parley/poll': 'polling' }[url.pathname] as
      | TransportName
      | undefined
    const sid = url.searchParams.get('sid')
    if (!kind) {
      res.writeHead(404).end()
      return
    }
    if (req.method === 'POST') {
      const body: Buffer[] = []
      req.on('data', (chunk: Buffer) => body.push(chunk))
      req.on('end', () => {
        // With a sid: upstream packets (ACKs, PONGs), taken. Without: a HELLO.
        if (sid) res.writeHead(204).end()
        else {
          const session = openSession(kind, Buffer.concat(body).toString())
          res.writeHead(200, { 'content-type': 'text/plain' }).end(session.text)
        }
      })
      return
    }
    if (!sid || spent.has(sid)) {
      res.writeHead(400, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ code: 'PARLEY_UNKNOWN_SESSION', message: 'no such session' }))
      return
    }
    const isHostile = pending.delete(sid)
    if (isHostile) spent.add(sid)
    const text = isHostile ? String(hostile) : marker()
    if (kind === 'sse') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' })
      res.write(`data: ${text}\n\n`)
      if (isHostile) setTimeout(() => res.destroy(), 20)
      return
    }
    // Polling: one answer, then (marker sessions) a poll held until the client lets it go.
    if (isHostile || !markerSent.has(sid)) {
      if (!isHostile) markerSent.add(sid)
      res.writeHead(200, { 'content-type': 'text/plain' }).end(text)
    }
  }

  return {
    http,
    url: () => `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    /** What the next run's first session is sent; the run's number, for its client to name. */
    next(data: string | Uint8Array, open: Record<string, unknown> = {}): number {
      hostile = data
      openFields = open
      firstOfRun = true
      return ++runs
    },
  }
}

// The three transports side by side, each with its own stand-in server and its own clients
// (closed by each test's `onTestFinished`, never by a teardown the others would feel): nothing
// here is timed against another transport. Within one transport the tests take turns, since
// each tells the shared stand-in what its next run sends.
const transports = ['websocket', 'sse', 'polling'] as const
describe.concurrent.each(transports)('a hostile server over %s', (transport) => {
  let server: ReturnType<typeof standInServer>
  beforeAll(async () => {
    server = standInServer()
    await new Promise<void>((resolve) => server.http.listen(0, '127.0.0.1', resolve))
  })
  afterAll(async () => {
    server.http.closeAllConnections()
    await new Promise((resolve) => server.http.close(resolve))
  })

  it.sequential('leaves the client whole: coded errors, and a working session again unless it was ended for good', async (context) => {
    const { client } = own(context)
    // Once this test has timed out, its runs would go on talking to the stand-in, which the
    // transport's next tests share (each run telling it what to send): the run under way stops
    // (its client disconnected, its connection closed with it) and no other starts. Its HELLO
    // may still be on its way: it names its run, and the stand-in keeps the next test's hostile
    // packet from it.
    const over = context.signal
    await fc.assert(
      fc.asyncProperty(messageFor(transport), async (data) => {
        if (over.aborted) return
        const run = server.next(data)
        const socket = client(server.url(), { transports: [transport], reconnectionDelay: 10, auth: { run } })
        const stop = () => socket.disconnect()
        over.addEventListener('abort', stop)
        const errors: unknown[] = []
        const downs: string[] = []
        const markers: unknown[] = []
        let connects = 0
        socket.on('connect', () => connects++)
        socket.on('error', (error) => errors.push(error))
        socket.on('connect_error', (error) => errors.push(error))
        socket.on('disconnect', (reason) => downs.push(reason))
        socket.on('marker', (n) => markers.push(n))
        const seen = () =>
          JSON.stringify({ data: typeof data === 'string' ? data : [...data], downs, markers })
        try {
          const expected = after(data)
          if (expected === 'gone') {
            await until(() => !socket.active, 3000, `the end: ${seen()}`)
            expect(markers, seen()).toEqual([])
          } else if (expected === 'waits') {
            // (A handoff ends no session: no 'disconnect', only the wait before the resume.)
            await until(() => connects > 0 && !socket.connected, 3000, `the CLOSE: ${seen()}`)
            await new Promise((resolve) => setTimeout(resolve, 100))
            expect({ active: socket.active, connected: socket.connected }, seen()).toEqual({
              active: true,
              connected: false,
            })
          } else {
            await until(() => markers.length > 0, 3000, `the marker: ${seen()}`)
            expect(socket.connected, seen()).toBe(true)
          }
          for (const error of errors) {
            expect(error, seen()).toBeInstanceOf(Error)
            expect((error as { code?: unknown }).code, seen()).toEqual(expect.any(String))
          }
        } finally {
          over.removeEventListener('abort', stop)
          socket.disconnect()
        }
      }),
      {
        numRuns: 150,
        // Each way a session can go, every run: a wait before a resume (handoff) or before a
        // new session (shutdown), an end for good, a stream that is not JSON, a broken frame.
        examples: [
          ['[1,"server handoff","moving",50000]'],
          ['[1,"server shutdown","bye",50000]'],
          ['[1,"server disconnect","kicked"]'],
          ['[1,"server shutdown","later",3000000000]'],
          ['[1,"server handoff","later",3000000000]'],
          ['not json'],
          ...(transport === 'websocket' ? [[new Uint8Array([0, 0, 0, 9, 91])] as [Uint8Array]] : []),
        ],
      },
    )
  }, 60_000)

  it.sequential('hears a handoff as the end of the session when it may not reconnect', async (context) => {
    const { client } = own(context)
    // Resuming elsewhere would be a reconnection: with reconnection off the session is over.
    server.next('[1,"server handoff","moving",0]')
    const socket = client(server.url(), { transports: [transport], reconnection: false })
    const downs: unknown[][] = []
    socket.on('disconnect', (...args: unknown[]) => downs.push(args))
    await until(() => downs.length > 0, 3000, 'the CLOSE')
    expect(downs).toEqual([['server handoff', { message: 'moving' }]])
    expect({ active: socket.active, connected: socket.connected }).toEqual({
      active: false,
      connected: false,
    })
  })

  it.sequential('sets no timer past what a timer can wait, whatever the server asks (longer ones fire at once)', async (context) => {
    const { client } = own(context)
    const overflows: string[] = []
    const onWarning = (warning: Error) => {
      if (warning.name === 'TimeoutOverflowWarning') overflows.push(warning.message)
    }
    process.on('warning', onWarning)
    try {
      // A heartbeat window of 35 years, then a wait of 35 days before the next session.
      server.next('[1,"server shutdown","later",3000000000]', { pingInterval: 2 ** 40, pingTimeout: 2 ** 40 })
      const socket = client(server.url(), { transports: [transport] })
      const downs: string[] = []
      socket.on('disconnect', (reason) => downs.push(reason))
      await until(() => downs.length > 0, 3000, 'the CLOSE')
      await new Promise((resolve) => setTimeout(resolve, 100))
      expect({ downs, active: socket.active, connected: socket.connected }).toEqual({
        downs: ['server shutdown'],
        active: true,
        connected: false,
      })
      socket.disconnect()
      // And options of no bound: they wait as long as a timer can, too.
      server.next('[2]')
      const patient = client(server.url(), {
        transports: [transport],
        connectTimeout: Infinity,
        reconnectionDelayMax: Infinity,
        upgradeDelayMax: Infinity,
      })
      const markers: unknown[] = []
      patient.on('marker', (n) => markers.push(n))
      await until(() => markers.length > 0, 3000, 'the marker after the resume')
      patient.disconnect()
      // Node warns each time a timer is set past its limit; none was.
      await new Promise((resolve) => setImmediate(resolve))
      expect(overflows).toEqual([])
    } finally {
      process.off('warning', onWarning)
    }
  })
})
