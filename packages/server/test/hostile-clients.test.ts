// Whatever a client sends, the real server answers by docs/protocol.md ("Packets a receiver
// refuses", "HTTP errors"): a packet it may send is used and the session lives on; one that does
// not decode, or that a client may not send, ends the session with CLOSE 'invalid packet' (and
// over HTTP a coded 400 when the body does not decode); a CLOSE ends it without a word. Inputs
// are valid client packets, mutated, and random text, over each transport; after each one a
// probe (an unnumbered request) tells whether the session is still there. The expected outcome
// comes from the protocol package's decoder, the same rules a conforming client follows. The
// handshake likewise: a HELLO opens a session, anything else is a coded refusal.
import { Writable } from 'node:stream'
import {
  decodeBatch,
  decodeFrame,
  decodeText,
  encodeFrame,
  encodeText,
  type Packet,
  PacketType,
  WS_SUBPROTOCOL,
} from '@parley/protocol'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { mutatedFrame, mutatedLine } from '../../../test/support/mutations.js'
import { type Started, startServer } from './helpers.js'
import { type RawClient, rawConnect } from './raw-client.js'

const TRANSPORTS = ['websocket', 'sse', 'polling'] as const
type Transport = (typeof TRANSPORTS)[number]

/** Packet types a client may send once its session is open. */
const CLIENT_TYPES: readonly number[] = [
  PacketType.CLOSE,
  PacketType.PONG,
  PacketType.ACK,
  PacketType.EVENT,
  PacketType.REPLY,
  PacketType.ERROR,
]

/** What a client may send, and what it may not (HELLO mid-session, OPEN, PING, MOVED). */
const seeds: Packet[] = [
  { type: PacketType.EVENT, seq: 1, name: 'chat', args: [{ text: 'hi', list: [1, { x: null }] }], ackId: 7 },
  { type: PacketType.EVENT, seq: 1, name: 'chat', args: ['bytes', new Uint8Array([1, 2, 3])], ackId: 0 },
  { type: PacketType.EVENT, seq: 0, name: 'probe', args: [1], ackId: 9 },
  { type: PacketType.REPLY, seq: 1, ackId: 4, args: [{ ok: true }] },
  { type: PacketType.ERROR, seq: 1, ackId: 4, code: 'APP_FAILED', message: 'no' },
  { type: PacketType.ACK, ack: 3 },
  { type: PacketType.PONG },
  { type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' },
  { type: PacketType.HELLO, auth: { token: 't' } },
  { type: PacketType.PING },
]
const seedLines = seeds.map((packet) => encodeText(packet))
const seedFrames = seeds
  .map((packet) => encodeFrame(packet))
  .filter((f): f is Uint8Array => f instanceof Uint8Array)

/** Anything a line can be: a seed, a mutated seed, a random JSON value, random text. */
const line = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...seedLines) },
  { weight: 4, arbitrary: mutatedLine(seedLines) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? 'null') },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
)

/** One WebSocket message, or one POST body of one to three lines. */
function inputFor(transport: Transport): fc.Arbitrary<string | Uint8Array> {
  if (transport === 'websocket')
    return fc.oneof({ weight: 4, arbitrary: line }, { weight: 1, arbitrary: mutatedFrame(seedFrames) })
  return fc.array(line, { minLength: 1, maxLength: 3 }).map((lines) => lines.join('\n'))
}

type Expected = 'lives' | 'invalid packet' | 'client close' | 'gap'

/** What the protocol says becomes of the session. */
function expectedFor(transport: Transport, input: string | Uint8Array): Expected {
  const decoded =
    typeof input !== 'string'
      ? decodeFrame(input)
      : transport === 'websocket'
        ? decodeText(input)
        : decodeBatch(input)
  if (!decoded.ok) return 'invalid packet'
  const packets = 'packets' in decoded ? decoded.packets : [decoded.packet]
  // Packets are used in order: what follows a CLOSE, or a refused type, is never read; nor what
  // follows a gap in the numbers (the session's first is 1), which lets the transport go (soon).
  let inSeq = 0
  for (const packet of packets) {
    if (packet.type === PacketType.CLOSE) return 'client close'
    if (!CLIENT_TYPES.includes(packet.type)) return 'invalid packet'
    if ('seq' in packet && packet.seq > 0) {
      if (packet.seq > inSeq + 1) return 'gap'
      if (packet.seq === inSeq + 1) inSeq++
    }
  }
  return 'lives'
}

type Outcome = { session: 'lives' } | { session: 'closed'; reason: string } | { session: 'ended silently' }

let nextProbe = 1_000_000

/**
 * Asks the session a question (an unnumbered EVENT with an ack id) and waits for its answer, or
 * for the transport to end. Then reads what came: the answer, or a CLOSE, or nothing.
 */
async function probe(client: RawClient): Promise<Outcome> {
  const ackId = nextProbe++
  const answered = (p: Packet) => p.type === PacketType.REPLY && p.ackId === ackId
  await client
    .send({ type: PacketType.EVENT, seq: 0, name: 'probe', args: [ackId], ackId })
    .catch(() => undefined)
  await Promise.race([client.next(answered, 3000).catch(() => undefined), client.ended])
  const close = client.received.find((p) => p.type === PacketType.CLOSE)
  if (close?.type === PacketType.CLOSE) return { session: 'closed', reason: close.reason }
  if (client.received.some(answered)) return { session: 'lives' }
  return { session: 'ended silently' }
}

/** Sends one hostile input; over HTTP, returns the answer's status and code. */
async function sendHostile(
  transport: Transport,
  base: string,
  client: RawClient,
  input: string | Uint8Array,
): Promise<{ status: number; code?: string }> {
  if (transport === 'websocket') {
    await client.sendRaw(input)
    return { status: 101 }
  }
  const url = `${base}/${transport === 'sse' ? 'sse' : 'poll'}?v=1&sid=${client.sid}`
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'text/plain' },
    body: input as string,
  })
  const text = await res.text()
  if (res.status === 204) return { status: 204 }
  const body = JSON.parse(text) as { code?: unknown }
  return { status: res.status, code: typeof body.code === 'string' ? body.code : undefined }
}

/** HELLOs as a client sends them: new sessions, and resumes of sessions this server never had. */
const helloLines = [
  '[8,{}]',
  '[8,{"auth":{"token":"t"}}]',
  '[8,{"sid":"abcDEF_-123","ack":2}]',
  '[8,{"auth":"x","sid":"V1StGXR8_Z5jdHi6B-myT","ack":0}]',
]

/** A first message or handshake body: a HELLO, a mutated one, or any line above. */
const handshakeLine = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(...helloLines) },
  { weight: 5, arbitrary: mutatedLine(helloLines) },
  { weight: 2, arbitrary: line },
)

type Handshake = { opened: true } | { opened: false; code: string; closeCode?: number; status?: number }

/** Opens a transport with `text` as its HELLO, and reads the answer. */
async function handshake(transport: Transport, base: string, text: string): Promise<Handshake> {
  if (transport !== 'websocket') {
    const res = await fetch(`${base}/${transport === 'sse' ? 'sse' : 'poll'}?v=1`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: text,
    })
    const body = await res.text()
    if (res.status === 200) {
      const answer = decodeText(body)
      return answer.ok && answer.packet.type === PacketType.OPEN
        ? { opened: true }
        : { opened: false, code: `answered 200 with ${body}` }
    }
    const parsed = JSON.parse(body) as { code?: unknown }
    return { opened: false, code: String(parsed.code), status: res.status }
  }
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/ws?v=1`, WS_SUBPROTOCOL)
  try {
    const closed = new Promise<number>((resolve) => ws.once('close', resolve))
    const first = new Promise<string>((resolve) => ws.once('message', (data) => resolve(String(data))))
    await new Promise((resolve, reject) => {
      ws.once('open', resolve)
      ws.once('error', reject)
    })
    ws.send(text)
    const answer = decodeText(await first)
    if (!answer.ok) return { opened: false, code: `answered ${answer.error.code}` }
    if (answer.packet.type === PacketType.OPEN) return { opened: true }
    if (answer.packet.type !== PacketType.ERROR)
      return { opened: false, code: `answered type ${answer.packet.type}` }
    return { opened: false, code: answer.packet.code, closeCode: await closed }
  } finally {
    ws.terminate()
  }
}

describe.each(TRANSPORTS)('a hostile client over %s', (transport) => {
  let started: Started
  /** The server's log lines at warn and above (it warns when it closes a session). */
  const logs: { level: number; msg: string }[] = []

  beforeAll(async () => {
    const stream = new Writable({
      write(chunk, _encoding, done) {
        logs.push(JSON.parse(String(chunk)) as { level: number; msg: string })
        done()
      },
    })
    started = await startServer(
      // No heartbeat inside a run: a PONG would be a POST of its own beside the hostile one.
      { pingInterval: 60_000, pingTimeout: 60_000 },
      (app) => {
        app.parley.on('connection', (socket) => {
          // A hostile client may send 'probe' too, with no reply asked.
          socket.on('probe', (n: unknown, ack?: unknown) => {
            if (typeof ack === 'function') ack(n)
          })
          socket.on('chat', (...args: unknown[]) => {
            const ack = args.at(-1)
            if (typeof ack === 'function') ack('got it')
          })
        })
      },
      { logger: { level: 'warn', stream } },
    )
  })

  afterAll(async () => {
    await started.app.close()
  })

  it('answers every input by the rules, and ends no session it should keep', async () => {
    await fc.assert(
      fc.asyncProperty(inputFor(transport), async (input) => {
        const client = await rawConnect(transport, started.base)
        try {
          const expected = expectedFor(transport, input)
          const answer = await sendHostile(transport, started.base, client, input)
          const outcome = await probe(client)
          const seen = { input: typeof input === 'string' ? input : [...input], answer, outcome }
          if (expected === 'lives') {
            expect(outcome, JSON.stringify(seen)).toEqual({ session: 'lives' })
            if (transport !== 'websocket') expect(answer.status, JSON.stringify(seen)).toBe(204)
          } else if (expected === 'gap') {
            // Its transport let go without a word once the gap stayed open for GAP_GRACE_MS (the
            // probe may be answered before that), the session kept for the client's resume.
            expect(
              [{ session: 'lives' }, { session: 'ended silently' }],
              JSON.stringify(seen),
            ).toContainEqual(outcome)
            const socket = [...started.app.parley.sockets.values()].find((s) => s.id === client.id)
            expect(socket?.connected, JSON.stringify(seen)).toBe(true)
            if (transport !== 'websocket') expect(answer.status, JSON.stringify(seen)).toBe(204)
          } else if (expected === 'invalid packet') {
            expect(outcome, JSON.stringify(seen)).toEqual({ session: 'closed', reason: 'invalid packet' })
            // A body that does not decode is a 400 with the decoder's code; one that decodes
            // but holds a packet a client may not send is a 204, and then the CLOSE.
            if (transport !== 'websocket') {
              expect([204, 400], JSON.stringify(seen)).toContain(answer.status)
              if (answer.status === 400) expect(answer.code, JSON.stringify(seen)).toMatch(/^PARLEY_[A-Z_]+$/)
            }
          } else {
            // The client said goodbye: the server ends the session and says nothing back.
            expect(outcome, JSON.stringify(seen)).toEqual({ session: 'ended silently' })
          }
        } finally {
          client.close()
        }
      }),
      { numRuns: 200 },
    )
  }, 60_000)

  it('answers every handshake by the rules: OPEN for a HELLO, a coded refusal for anything else', async () => {
    await fc.assert(
      fc.asyncProperty(handshakeLine, async (text) => {
        const hello = decodeText(text)
        const answer = await handshake(transport, started.base, text)
        const seen = JSON.stringify({ text, answer })
        if (hello.ok && hello.packet.type === PacketType.HELLO) {
          // A resume of a session this server never had is a new session (recovered: false).
          expect(answer, seen).toEqual({ opened: true })
        } else if (transport === 'websocket') {
          // ERROR [7,0,0,code,message], then close 1008.
          expect(answer, seen).toEqual({
            opened: false,
            code: expect.stringMatching(/^PARLEY_[A-Z_]+$/),
            closeCode: 1008,
          })
        } else {
          expect(answer, seen).toEqual({
            opened: false,
            code: expect.stringMatching(/^PARLEY_[A-Z_]+$/),
            status: 400,
          })
        }
      }),
      { numRuns: 150 },
    )
  }, 60_000)

  it('answers any request on its endpoints with a coded refusal or a real answer, never a 500', async () => {
    // Query values as a crafted URL could carry them: the protocol's own keys, or others.
    const query = fc.dictionary(
      fc.constantFrom('v', 'sid', 'ack', 'EIO', 'transport', 'v[]', 'sid[]'),
      fc.oneof(
        fc.constantFrom('1', '2', '', '0', '-1', '1e3', 'abcDEF_-123', 'V1StGXR8_Z5jdHi6B-myT'),
        fc.string(),
      ),
      { maxKeys: 4 },
    )
    const request = fc.record({
      method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'),
      query,
      body: fc.oneof(fc.constant(undefined), line),
    })
    const endpoint = `${started.base}/${transport === 'websocket' ? 'ws' : transport === 'sse' ? 'sse' : 'poll'}`
    await fc.assert(
      fc.asyncProperty(request, async ({ method, query, body }) => {
        const url = `${endpoint}?${new URLSearchParams(query)}`
        const res = await fetch(url, {
          method,
          headers: { 'content-type': 'text/plain' },
          body: method === 'GET' || method === 'OPTIONS' ? undefined : body,
          signal: AbortSignal.timeout(2000),
        })
        const seen = JSON.stringify({ method, query, body, status: res.status })
        if (res.status === 200 && res.headers.get('content-type')?.startsWith('text/event-stream')) {
          // A stream was opened (a session this request made or found): it is the real answer.
          await res.body?.cancel()
          return
        }
        const text = await res.text()
        expect(res.status, seen).toBeLessThan(500)
        if (res.status >= 400)
          expect(JSON.parse(text), seen).toMatchObject({ code: expect.stringMatching(/^PARLEY_[A-Z_]+$/) })
      }),
      { numRuns: 150 },
    )
  }, 60_000)

  it('keeps serving: a well-behaved client gets its answer, and nothing was logged as an error', async () => {
    const client = await rawConnect(transport, started.base)
    try {
      expect(await probe(client)).toEqual({ session: 'lives' })
    } finally {
      client.close()
    }
    expect(logs.filter((entry) => entry.level >= 50)).toEqual([])
    // The refusals were logged, as warnings that name the decoder's code.
    expect(logs.some((entry) => entry.level === 40 && /PARLEY_[A-Z_]+/.test(entry.msg))).toBe(true)
  })
})
