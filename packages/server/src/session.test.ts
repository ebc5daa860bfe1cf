import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import {
  type ClosePacket,
  type CloseReason,
  ErrorCode,
  type EventPacket,
  type OpenPacket,
  type Packet,
  PacketType,
  ParleyError,
  prepareEvent,
  type SplitText,
  type TransportName,
} from '@parley/protocol'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { noMetrics } from './metrics.js'
import {
  GAP_GRACE_MS,
  type IncomingMessage,
  Session,
  type SessionConfig,
  type SessionOwner,
} from './session.js'
import {
  type CloseKind,
  type Outgoing,
  outgoing,
  preparedOutgoing,
  type Transport,
  type TransportCloseReason,
  type TransportOwner,
} from './transports/transport.js'

/**
 * A transport with no medium: it records what the session sends and lets the test play the
 * client (packets, undecodable input, loss of the medium).
 */
class FakeTransport implements Transport {
  open = true
  bufferedAmount = 0
  lingering = false
  /** As SSE and polling (see `downstream`); false, as WebSocket, unless the test says so. */
  downstreamFollows = false
  /** Every packet handed over, the handshake's OPEN included, in order. */
  readonly sent: Packet[] = []
  closedWith: CloseKind | undefined
  /** Every owner the transport was bound to, even after it unbound (a late medium event). */
  readonly everBound: TransportOwner[] = []
  #owner: TransportOwner | null = null

  constructor(readonly name: TransportName = 'websocket') {}

  /** As the real ones: WebSocket (without an extension) and SSE write bytes, polling text. */
  get writesBytes(): boolean {
    return this.name !== 'polling'
  }

  handshake(open: Outgoing<OpenPacket>): void {
    if (this.open) this.sent.push(open.packet)
  }

  send(out: Outgoing): void {
    if (this.open) this.sent.push(out.packet)
  }

  close(kind: CloseKind): void {
    if (!this.open) return
    this.open = false
    this.closedWith = kind
    this.#owner = null
  }

  bind(owner: TransportOwner | null): void {
    this.#owner = owner
    if (owner) this.everBound.push(owner)
  }

  /** The client sends a packet that decoded cleanly (of `size` bytes on the wire). */
  receive(packet: Packet, size = 0): void {
    if (this.open) this.#owner?.transportPacket(this, packet, size)
  }

  /** The client's GET for the downstream (SSE, polling). */
  downstream(): void {
    if (this.open) this.#owner?.transportDownstream?.(this)
  }

  /** The client sends something that does not decode. */
  garbage(error: ParleyError): void {
    if (this.open) this.#owner?.transportInvalid(this, error)
  }

  /** The medium goes away by itself. */
  lose(reason: TransportCloseReason): void {
    if (!this.open) return
    this.open = false
    const owner = this.#owner
    this.#owner = null
    owner?.transportLost(this, reason)
  }

  types(): number[] {
    return this.sent.map((packet) => packet.type)
  }

  /** The `seq` of every numbered event sent, in order. */
  eventSeqs(): number[] {
    return this.sent.flatMap((packet) => (packet.type === PacketType.EVENT ? [packet.seq] : []))
  }

  last(): Packet | undefined {
    return this.sent.at(-1)
  }
}

class FakeOwner implements SessionOwner {
  readonly messages: IncomingMessage[] = []
  readonly changes: [TransportName | null, TransportName | null][] = []
  readonly ends: CloseReason[] = []

  sessionMessage(packet: IncomingMessage): void {
    this.messages.push(packet)
  }

  sessionTransportChanged(now: TransportName | null, before: TransportName | null): void {
    this.changes.push([now, before])
  }

  sessionEnded(reason: CloseReason): void {
    this.ends.push(reason)
  }
}

const PING_INTERVAL = 1000
const PING_TIMEOUT = 500
const RECOVERY_WINDOW = 5000
const HANDSHAKE_TIMEOUT = 2000

function setup(overrides: Partial<SessionConfig> = {}) {
  const config: SessionConfig = {
    pingInterval: PING_INTERVAL,
    pingTimeout: PING_TIMEOUT,
    handshakeTimeout: HANDSHAKE_TIMEOUT,
    maxPayload: 100_000,
    maxBufferedBytes: 100_000,
    highWaterMark: 10_000,
    metrics: noMetrics,
    recoveryWindow: RECOVERY_WINDOW,
    transports: ['websocket', 'sse', 'polling'],
    warn: vi.fn(),
    invalid: vi.fn(),
    linger: vi.fn(),
    ended: vi.fn(),
    ...overrides,
  }
  const session = new Session(config)
  const owner = new FakeOwner()
  session.setOwner(owner)
  return { session, owner, config }
}

const event = (seq: number, name = 'chat', args: EventPacket['args'] = []): EventPacket => ({
  type: PacketType.EVENT,
  seq,
  name,
  args,
  ackId: 0,
})

/** Sends `count` numbered events named m1, m2, ... */
function sendEvents(session: Session, count: number): void {
  for (let i = 0; i < count; i++) session.sendNumbered((seq) => event(seq, `m${seq}`))
}

function openOf(transport: FakeTransport): OpenPacket {
  const open = transport.sent.find((packet) => packet.type === PacketType.OPEN)
  if (!open) throw new Error('no OPEN was sent')
  return open as OpenPacket
}

// Every timer faked but the turns of the event loop after which the heartbeat's deadlines fire
// once their timer ran (real setImmediates: see `TimerQueue`), which `advance` lets go by.
beforeEach(() => {
  vi.useFakeTimers({
    toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'performance'],
  })
})

/**
 * Advances the fake clock by `ms`, a millisecond at a time, letting go by after each the two
 * turns after which the deadlines that fell due fire: as the event loop would, each before the
 * next timer.
 */
async function advance(ms: number): Promise<void> {
  for (let step = 0; step < ms; step++) {
    vi.advanceTimersByTime(1)
    await turn()
    await turn()
  }
}

const turn = () => new Promise((resolve) => setImmediate(resolve))

afterEach(() => {
  vi.useRealTimers()
})

/**
 * A session whose client stopped answering its PINGs: detached at PING_INTERVAL + PING_TIMEOUT,
 * its window ('ping timeout') running from then.
 */
async function awayByPingTimeout() {
  const made = setup()
  made.session.attach(new FakeTransport(), 0, false)
  await advance(PING_INTERVAL + PING_TIMEOUT)
  expect(made.session.state).toBe('detached')
  return made
}

describe('Session: attach and replay', () => {
  it('replays what is unacknowledged, in order, after ACKs and bursts of every size', () => {
    const { session } = setup()
    const first = new FakeTransport()
    session.attach(first, 0, false)
    const send = (count: number) => {
      for (let i = 0; i < count; i++) session.sendNumbered((seq) => event(seq, 'n', [`#${seq}`]))
    }
    const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)
    send(6)
    first.receive({ type: PacketType.ACK, ack: 4 })
    // Past the first ring's eight while its start has moved on, then acknowledged in part.
    send(9)
    first.receive({ type: PacketType.ACK, ack: 9 })
    send(3)
    first.lose('transport close')

    const second = new FakeTransport()
    session.attach(second, 9, true)
    expect(second.eventSeqs()).toEqual(range(10, 18))
    expect(
      second.sent.filter((p) => p.type === PacketType.EVENT).map((p) => (p as EventPacket).args),
    ).toEqual(range(10, 18).map((seq) => [`#${seq}`]))
    // An ACK in the middle of a resume: the rest stays, and comes again on the next transport.
    second.receive({ type: PacketType.ACK, ack: 16 })
    second.lose('transport close')
    const third = new FakeTransport()
    session.attach(third, 16, true)
    expect(third.eventSeqs()).toEqual([17, 18])
    third.receive({ type: PacketType.ACK, ack: 18 })
    expect(session.keptBytes).toBe(0)
  })

  it('sends OPEN first, with the sid, the public id, the limits and recovered', () => {
    const { session } = setup()
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    expect(session.state).toBe('attached')
    expect(session.transport).toBe(transport)
    expect(transport.sent).toEqual([
      {
        type: PacketType.OPEN,
        sid: session.sid,
        id: session.id,
        pingInterval: PING_INTERVAL,
        pingTimeout: PING_TIMEOUT,
        maxPayload: 100_000,
        transports: ['websocket', 'sse', 'polling'],
        recovered: false,
        ack: 0,
      },
    ])
    expect(session.sid).not.toBe(session.id)
  })

  it('sends numbered packets at once while attached and keeps them until acknowledged', () => {
    const { session } = setup()
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    expect(session.keptBytes).toBe(0)
    sendEvents(session, 3)
    expect(transport.eventSeqs()).toEqual([1, 2, 3])
    expect(session.keptBytes).toBeGreaterThan(0)
  })

  it('uses no sequence number for a packet that cannot be encoded', () => {
    const { session } = setup()
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    expect(() =>
      session.sendNumbered((seq) => ({ ...event(seq), args: [10n as unknown as string] })),
    ).toThrow(expect.objectContaining({ code: ErrorCode.UNSERIALIZABLE }))
    expect(session.keptBytes).toBe(0)
    sendEvents(session, 1)
    expect(transport.eventSeqs()).toEqual([1])
  })

  it('numbers packets encoded ahead (broadcasts) in the same sequence as the others', () => {
    const { session } = setup()
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    sendEvents(session, 1)
    expect(session.sendEncoded((seq) => outgoing(event(seq, 'broadcast')))).toBe(true)
    sendEvents(session, 1)
    expect(transport.eventSeqs()).toEqual([1, 2, 3])
    session.end('server disconnect')
    expect(session.sendEncoded((seq) => outgoing(event(seq)))).toBe(false)
  })

  it('keeps a broadcast copy as the shared encoding and counts, replays and hands it off as its own text', () => {
    // Two sessions, one sending each copy on its own, one sending the shared encoding: what
    // the client gets and what the buffers count must not tell them apart.
    const prepared = prepareEvent('news', [{ text: 'hé' }])
    const own = setup().session
    const shared = setup().session
    const ownWire = new FakeTransport()
    const sharedWire = new FakeTransport()
    own.attach(ownWire, 0, false)
    shared.attach(sharedWire, 0, false)
    for (let i = 0; i < 12; i++) {
      sendEvents(own, 1)
      sendEvents(shared, 1)
      own.sendEncoded((seq) =>
        outgoing({ type: PacketType.EVENT, seq, name: 'news', args: [{ text: 'hé' }], ackId: 0 }),
      )
      expect(shared.sendPrepared(prepared, 0)).toBe(true)
    }
    expect(shared.sendPrepared(prepared, 7)).toBe(true)
    own.sendEncoded((seq) =>
      outgoing({ type: PacketType.EVENT, seq, name: 'news', args: [{ text: 'hé' }], ackId: 7 }),
    )
    expect(sharedWire.sent.slice(1)).toEqual(ownWire.sent.slice(1))
    expect(shared.keptBytes).toBe(own.keptBytes)

    ownWire.receive({ type: PacketType.ACK, ack: 9 })
    sharedWire.receive({ type: PacketType.ACK, ack: 9 })
    expect(shared.keptBytes).toBe(own.keptBytes)
    ownWire.lose('transport close')
    sharedWire.lose('transport close')
    const ownAgain = new FakeTransport('polling')
    const sharedAgain = new FakeTransport('polling')
    own.attach(ownAgain, 10, true)
    shared.attach(sharedAgain, 10, true)
    expect(sharedAgain.eventSeqs()).toEqual([11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25])
    expect(sharedAgain.sent.slice(1)).toEqual(ownAgain.sent.slice(1))
    expect(shared.freeze(() => {}).kept).toEqual(own.freeze(() => {}).kept)
  })

  it('replays unacknowledged packets in order after a resume', () => {
    const { session, owner } = setup()
    const first = new FakeTransport()
    session.attach(first, 0, false)
    sendEvents(session, 3)
    first.lose('transport close')
    sendEvents(session, 2) // kept while detached

    const second = new FakeTransport('sse')
    session.attach(second, 0, true)
    expect(second.types()[0]).toBe(PacketType.OPEN)
    expect(openOf(second)).toMatchObject({ sid: session.sid, id: session.id, recovered: true })
    expect(second.eventSeqs()).toEqual([1, 2, 3, 4, 5])
    expect(second.sent.slice(1).map((packet) => (packet as EventPacket).name)).toEqual([
      'm1',
      'm2',
      'm3',
      'm4',
      'm5',
    ])
    expect(owner.changes).toEqual([
      [null, 'websocket'],
      ['sse', null],
    ])
  })

  it('replays only what the ack of the resuming client does not cover', () => {
    const { session } = setup()
    const first = new FakeTransport()
    session.attach(first, 0, false)
    sendEvents(session, 4)
    first.lose('transport close')
    const second = new FakeTransport()
    session.attach(second, 2, true)
    expect(second.eventSeqs()).toEqual([3, 4])
  })

  it('trims the replay buffer when the client acknowledges', () => {
    const { session } = setup()
    const first = new FakeTransport()
    session.attach(first, 0, false)
    sendEvents(session, 4)
    const full = session.keptBytes

    first.receive({ type: PacketType.ACK, ack: 2 })
    const half = session.keptBytes
    expect(half).toBeLessThan(full)
    expect(half).toBeGreaterThan(0)

    // An old ack again trims nothing more.
    first.receive({ type: PacketType.ACK, ack: 1 })
    expect(session.keptBytes).toBe(half)

    first.receive({ type: PacketType.ACK, ack: 4 })
    expect(session.keptBytes).toBe(0)

    first.lose('transport close')
    const second = new FakeTransport()
    session.attach(second, 0, true)
    expect(second.eventSeqs()).toEqual([])
  })

  it('keeps numbering after a full ack: the next packets replay from where the ack left off', () => {
    const { session } = setup()
    const first = new FakeTransport()
    session.attach(first, 0, false)
    sendEvents(session, 2)
    first.receive({ type: PacketType.ACK, ack: 2 })
    sendEvents(session, 2)
    first.lose('transport close')
    const second = new FakeTransport()
    session.attach(second, 2, true)
    expect(second.eventSeqs()).toEqual([3, 4])
  })

  it('sends MOVED to the replaced transport, closes it and replays on the new one', () => {
    const { session, owner } = setup()
    const first = new FakeTransport('polling')
    session.attach(first, 0, false)
    sendEvents(session, 2)

    const second = new FakeTransport('websocket')
    session.attach(second, 0, true)
    expect(first.last()).toEqual({ type: PacketType.MOVED })
    expect(first.open).toBe(false)
    expect(first.closedWith).toBe('normal')
    expect(second.types()).toEqual([PacketType.OPEN, PacketType.EVENT, PacketType.EVENT])
    expect(second.eventSeqs()).toEqual([1, 2])
    expect(session.transport).toBe(second)
    expect(owner.changes).toEqual([['websocket', 'polling']])

    sendEvents(session, 1)
    expect(second.eventSeqs()).toEqual([1, 2, 3])
    expect(first.eventSeqs()).toEqual([1, 2])
  })

  it('hands a replaced transport that still holds packets to linger', () => {
    const { session, config } = setup()
    const first = new FakeTransport('polling')
    first.lingering = true
    session.attach(first, 0, false)
    session.attach(new FakeTransport('websocket'), 0, true)
    expect(config.linger).toHaveBeenCalledWith(session.sid, first)
  })

  it('ignores what a replaced transport still reports', () => {
    const { session, owner } = setup()
    const first = new FakeTransport()
    session.attach(first, 0, false)
    const stale = first.everBound[0]!
    const second = new FakeTransport('sse')
    session.attach(second, 0, true)

    stale.transportPacket(first, event(1), 0)
    stale.transportPacket(first, { type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' }, 0)
    stale.transportInvalid(first, new ParleyError(ErrorCode.INVALID_JSON, 'not JSON'))
    stale.transportLost(first, 'transport close')

    expect(owner.messages).toEqual([])
    expect(owner.ends).toEqual([])
    expect(session.state).toBe('attached')
    expect(session.transport).toBe(second)
  })

  it('keeps one CLOSE per reason for the sessions that end with its default message (the ended-sessions table holds them)', () => {
    const ended = vi.fn()
    const ends = ['transport close', 'transport close', 'server disconnect'] as const
    for (const reason of ends) {
      const { session } = setup({ ended })
      session.attach(new FakeTransport(), 0, false)
      session.end(reason)
    }
    const [first, second, other] = ended.mock.calls.map(([, close]) => close as Outgoing<ClosePacket>)
    expect(second).toBe(first)
    expect(other).not.toBe(first)
    expect(first!.packet).toEqual({
      type: PacketType.CLOSE,
      reason: 'transport close',
      message: 'no transport came back within the recovery window',
    })
    // A message or a retryAfter of its own makes a CLOSE of its own.
    const { session } = setup({ ended })
    session.end('server shutdown', { retryAfter: 1000 })
    expect(ended.mock.calls[3]![1].packet).toMatchObject({ reason: 'server shutdown', retryAfter: 1000 })
  })

  it('refuses to attach once ended', () => {
    const { session } = setup()
    session.attach(new FakeTransport(), 0, false)
    session.end('server disconnect')
    expect(() => session.attach(new FakeTransport(), 0, true)).toThrow(
      expect.objectContaining({ code: ErrorCode.UNKNOWN_SESSION }),
    )
  })
})

describe('Session: incoming packets', () => {
  it('delivers numbered packets once and in order, never duplicates or packets after a gap', () => {
    const { session, owner } = setup()
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    transport.receive(event(1, 'a'))
    transport.receive(event(1, 'a again')) // duplicate
    transport.receive(event(2, 'b'))
    transport.receive(event(2, 'b again')) // duplicate
    transport.receive(event(3, 'c'))
    expect(owner.messages.map((packet) => (packet as EventPacket).name)).toEqual(['a', 'b', 'c'])
  })

  it('lets the transport go at a gap, so that its client resumes and sends again what was lost', async () => {
    // Over HTTP a POST can be answered 204 by a node that used none of it (the old node of a
    // handed-off session): its client, none the wiser, would go on sending what is dropped here.
    const { session, owner } = setup()
    const transport = new FakeTransport('sse')
    session.attach(transport, 0, false)
    transport.receive(event(1, 'a'))
    transport.receive(event(3, 'c')) // gap: 2 is missing
    // Not at once: the packets sent again after a resume may fill it.
    vi.advanceTimersByTime(GAP_GRACE_MS - 1)
    expect(transport.open).toBe(true)
    vi.advanceTimersByTime(1)
    // The verdict waits two turns of the event loop (see `InputFirstTimer`).
    expect(transport.open).toBe(true)
    await turn()
    await turn()
    expect(transport.open).toBe(false)
    expect(session.state).toBe('detached')
    // The resume: everything past the session's ACK (1), in order.
    const again = new FakeTransport('sse')
    session.attach(again, 0, true)
    again.receive(event(2, 'b'))
    again.receive(event(3, 'c'))
    expect(owner.messages.map((packet) => (packet as EventPacket).name)).toEqual(['a', 'b', 'c'])
    expect(session.state).toBe('attached')
  })

  it('keeps the transport when what comes next fills the gap within GAP_GRACE_MS', () => {
    // A POST sent before a resume, its first packets lost with the old connection, reaching the
    // server after the resume: the resume's own resend fills the gap behind it.
    const { session, owner } = setup()
    const transport = new FakeTransport('sse')
    session.attach(transport, 0, false)
    transport.receive(event(1, 'a'))
    transport.receive(event(3, 'c')) // gap: 2 is missing
    transport.receive(event(4, 'd'))
    vi.advanceTimersByTime(GAP_GRACE_MS / 2)
    transport.receive(event(2, 'b'))
    transport.receive(event(3, 'c'))
    transport.receive(event(4, 'd'))
    // Past the grace, and short of the heartbeat's timeout (PING_INTERVAL + PING_TIMEOUT).
    vi.advanceTimersByTime(GAP_GRACE_MS / 2 + 1)
    expect(transport.open).toBe(true)
    expect(session.state).toBe('attached')
    expect(owner.messages.map((packet) => (packet as EventPacket).name)).toEqual(['a', 'b', 'c', 'd'])
  })

  it('keeps the transport when what fills the gap is read in the turns after its grace ran out', async () => {
    // A server thread that stalled past the grace: Node runs its timer before it reads the
    // packets that came meanwhile, which the verdict waits for.
    const { session, owner } = setup()
    const transport = new FakeTransport('sse')
    session.attach(transport, 0, false)
    transport.receive(event(1, 'a'))
    transport.receive(event(3, 'c')) // gap: 2 is missing
    vi.advanceTimersByTime(GAP_GRACE_MS)
    await turn()
    transport.receive(event(2, 'b'))
    transport.receive(event(3, 'c'))
    await turn()
    await turn()
    expect(transport.open).toBe(true)
    expect(session.state).toBe('attached')
    expect(owner.messages.map((packet) => (packet as EventPacket).name)).toEqual(['a', 'b', 'c'])
  })

  it('lets the transport go when what comes next leaves packets past the gap unsent', async () => {
    const { session } = setup()
    const transport = new FakeTransport('sse')
    session.attach(transport, 0, false)
    transport.receive(event(1, 'a'))
    transport.receive(event(3, 'c')) // gap: 2 is missing; 3 is dropped with it
    transport.receive(event(2, 'b')) // fills it, but 3 went nowhere
    vi.advanceTimersByTime(GAP_GRACE_MS)
    await turn()
    await turn()
    expect(transport.open).toBe(false)
    expect(session.state).toBe('detached')
  })

  it('gives a gap that opens after an earlier one was filled a full grace of its own', async () => {
    // Two POSTs overtaken in turn: the grace of the first gap, filled, must not cut the second's short.
    const { session, owner } = setup()
    const transport = new FakeTransport('sse')
    session.attach(transport, 0, false)
    transport.receive(event(1, 'a'))
    transport.receive(event(3, 'c')) // gap: 2 is missing
    vi.advanceTimersByTime(GAP_GRACE_MS / 2)
    transport.receive(event(2, 'b'))
    transport.receive(event(3, 'c')) // filled
    transport.receive(event(5, 'e')) // a second gap: 4 is missing
    // Past the first gap's grace, well within the second's.
    await advance(GAP_GRACE_MS / 2 + 10)
    expect(transport.open).toBe(true)
    transport.receive(event(4, 'd'))
    transport.receive(event(5, 'e'))
    // Past where the second gap's grace would have ended: filled, it lets go of nothing.
    await advance(GAP_GRACE_MS)
    expect(transport.open).toBe(true)
    expect(session.state).toBe('attached')
    expect(owner.messages.map((packet) => (packet as EventPacket).name)).toEqual(['a', 'b', 'c', 'd', 'e'])
  })

  it('lets the transport go a full grace after a second gap opened, when nothing fills it', async () => {
    const { session } = setup()
    const transport = new FakeTransport('sse')
    session.attach(transport, 0, false)
    transport.receive(event(1, 'a'))
    transport.receive(event(3, 'c')) // gap: 2 is missing
    vi.advanceTimersByTime(GAP_GRACE_MS / 2)
    transport.receive(event(2, 'b'))
    transport.receive(event(3, 'c')) // filled
    transport.receive(event(5, 'e')) // a second gap, never filled
    await advance(GAP_GRACE_MS - 1)
    expect(transport.open).toBe(true)
    await advance(1)
    expect(transport.open).toBe(false)
    expect(session.state).toBe('detached')
  })

  it('gives a gap on a resumed transport its own grace, whatever one left open on the old transport', async () => {
    const { session } = setup()
    const before = new FakeTransport('sse')
    session.attach(before, 0, false)
    before.receive(event(1, 'a'))
    before.receive(event(3, 'c')) // gap: 2 is missing
    vi.advanceTimersByTime(GAP_GRACE_MS / 2)
    // The client resumes on another transport before the grace ran out, and what it sends there
    // leaves a gap of its own, never filled.
    const after = new FakeTransport('sse')
    session.attach(after, 1, true)
    after.receive(event(2, 'b'))
    after.receive(event(4, 'd')) // gap: 3 is missing
    await advance(GAP_GRACE_MS - 1)
    expect(after.open).toBe(true)
    await advance(1)
    expect(after.open).toBe(false)
    expect(session.state).toBe('detached')
  })

  it('delivers replies and errors under the same numbering as events', () => {
    const { session, owner } = setup()
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    transport.receive({ type: PacketType.REPLY, seq: 1, ackId: 7, args: ['ok'] })
    transport.receive({ type: PacketType.ERROR, seq: 2, ackId: 8, code: 'NOPE', message: 'no' })
    transport.receive({ type: PacketType.REPLY, seq: 2, ackId: 9, args: [] }) // duplicate number
    expect(owner.messages.map((packet) => packet.type)).toEqual([PacketType.REPLY, PacketType.ERROR])
  })

  it('delivers volatile (seq 0) events without numbering or acknowledging them', () => {
    const { session, owner } = setup()
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    transport.receive(event(0, 'v1'))
    transport.receive(event(0, 'v2'))
    transport.receive(event(1, 'n1'))
    expect(owner.messages.map((packet) => (packet as EventPacket).name)).toEqual(['v1', 'v2', 'n1'])
    vi.advanceTimersByTime(1000)
    expect(transport.sent.filter((packet) => packet.type === PacketType.ACK)).toEqual([
      { type: PacketType.ACK, ack: 1 },
    ])
  })

  it('acknowledges at once when 32 packets wait for an ack', () => {
    const { session } = setup()
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    for (let seq = 1; seq <= 31; seq++) transport.receive(event(seq))
    expect(transport.types()).not.toContain(PacketType.ACK)
    transport.receive(event(32))
    expect(transport.last()).toEqual({ type: PacketType.ACK, ack: 32 })
    // Nothing is left to acknowledge: the delayed ack does not follow.
    vi.advanceTimersByTime(1000)
    expect(transport.types().filter((type) => type === PacketType.ACK)).toHaveLength(1)
  })

  it('acknowledges fewer packets once the ack delay passes', () => {
    const { session } = setup()
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    transport.receive(event(1))
    vi.advanceTimersByTime(100)
    transport.receive(event(2))
    expect(transport.types()).not.toContain(PacketType.ACK)
    // The delay counts from the first packet that waits, not the last.
    vi.advanceTimersByTime(100)
    expect(transport.last()).toEqual({ type: PacketType.ACK, ack: 2 })
    vi.advanceTimersByTime(1000)
    expect(transport.types().filter((type) => type === PacketType.ACK)).toHaveLength(1)
  })

  it('holds its ACK while 64 KiB wait for the client, then sends one for everything', () => {
    const { session } = setup()
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    const acks = () => transport.sent.filter((packet) => packet.type === PacketType.ACK)
    // A client that keeps sending and does not read what the server sends it.
    transport.bufferedAmount = 64 * 1024
    for (let seq = 1; seq <= 100; seq++) transport.receive(event(seq))
    vi.advanceTimersByTime(1000)
    expect(acks()).toEqual([])
    transport.bufferedAmount = 64 * 1024 - 1
    vi.advanceTimersByTime(200)
    expect(acks()).toEqual([{ type: PacketType.ACK, ack: 100 }])
    vi.advanceTimersByTime(1000)
    expect(acks()).toHaveLength(1)
  })

  it('carries its ack in OPEN on a resume instead of a separate ACK', () => {
    const { session } = setup()
    const first = new FakeTransport()
    session.attach(first, 0, false)
    first.receive(event(1))
    first.receive(event(2))
    const second = new FakeTransport()
    session.attach(second, 0, true)
    expect(openOf(second).ack).toBe(2)
    vi.advanceTimersByTime(1000)
    expect(first.types()).not.toContain(PacketType.ACK)
    expect(second.types()).not.toContain(PacketType.ACK)
  })
})

describe('Session: the end', () => {
  it('ends with client disconnect on a CLOSE from the client, and sends no CLOSE back', () => {
    const { session, owner } = setup()
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    transport.receive({ type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' })
    expect(owner.ends).toEqual(['client disconnect'])
    expect(session.state).toBe('closed')
    expect(session.transport).toBeNull()
    expect(transport.types()).not.toContain(PacketType.CLOSE)
    expect(transport.open).toBe(false)
  })

  it('ends with invalid packet, and tells the client why, on input that does not decode', () => {
    const { session, owner, config } = setup()
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    transport.garbage(new ParleyError(ErrorCode.INVALID_JSON, 'not JSON'))
    expect(owner.ends).toEqual(['invalid packet'])
    expect(transport.last()).toEqual({
      type: PacketType.CLOSE,
      reason: 'invalid packet',
      message: `${ErrorCode.INVALID_JSON}: not JSON`,
    })
    expect(transport.closedWith).toBe('normal')
    expect(config.invalid).toHaveBeenCalledExactlyOnceWith(
      expect.objectContaining({ code: ErrorCode.INVALID_JSON }),
    )
  })

  it.each([
    [
      'OPEN',
      {
        type: PacketType.OPEN,
        sid: 's',
        id: 'i',
        pingInterval: 1,
        pingTimeout: 1,
        maxPayload: 1,
        transports: [],
        recovered: false,
        ack: 0,
      },
    ],
    ['PING', { type: PacketType.PING }],
    ['MOVED', { type: PacketType.MOVED }],
    ['HELLO', { type: PacketType.HELLO }],
  ] as [string, Packet][])('ends with invalid packet when the client sends %s', (_, packet) => {
    const { session, owner } = setup()
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    transport.receive(packet)
    expect(owner.ends).toEqual(['invalid packet'])
    expect(transport.last()).toMatchObject({ type: PacketType.CLOSE, reason: 'invalid packet' })
  })

  it('detaches on transport loss and ends with transport close when the recovery window passes', async () => {
    const { session, owner } = setup()
    const transport = new FakeTransport('sse')
    session.attach(transport, 0, false)
    transport.lose('transport close')
    expect(session.state).toBe('detached')
    expect(session.transport).toBeNull()
    expect(owner.changes).toEqual([[null, 'sse']])
    vi.advanceTimersByTime(RECOVERY_WINDOW - 1)
    expect(owner.ends).toEqual([])
    // The verdict waits two turns once its timer ran: a resume read in them keeps the session.
    await advance(1)
    expect(owner.ends).toEqual(['transport close'])
    expect(session.state).toBe('closed')
  })

  it('ends at once, with the reason its window would, when asked once the window is spent', async () => {
    const { session, owner } = await awayByPingTimeout()
    vi.advanceTimersByTime(RECOVERY_WINDOW - 1)
    // Not yet spent: nothing ends.
    expect(session.endIfWindowSpent()).toBe(false)
    // Spent, its verdict's turns not run yet (a stall of the thread, a drain beginning in them).
    vi.advanceTimersByTime(1)
    expect(session.recoveryLeft()).toBe(0)
    expect(session.state).toBe('detached')
    expect(session.endIfWindowSpent()).toBe(true)
    expect(owner.ends).toEqual(['ping timeout'])
    expect(session.state).toBe('closed')
    // Once: the timer's own verdict does not end it again.
    await advance(1)
    expect(session.endIfWindowSpent()).toBe(false)
    expect(owner.ends).toEqual(['ping timeout'])
  })

  it('frozen with its client away, does not end by its window, but ends with its reason when asked once it is spent', async () => {
    const { session, owner } = await awayByPingTimeout()
    session.freeze(() => {})
    vi.advanceTimersByTime(RECOVERY_WINDOW - 1)
    expect(session.endIfWindowSpent()).toBe(false)
    // Spent while frozen (the store waited): its timer was set aside, nothing ended it.
    await advance(10)
    expect(session.state).toBe('frozen')
    expect(owner.ends).toEqual([])
    expect(session.endIfWindowSpent()).toBe(true)
    expect(owner.ends).toEqual(['ping timeout'])
    expect(session.state).toBe('closed')
  })

  // A move given up on (`thaw`) or a drain's session that finishes here (`unfreeze`): the client
  // was promised its window from when its transport went, not a whole new one from the thaw.
  it.each(['thaw', 'unfreeze'] as const)(
    'frozen with its client away, after %s ends when its window would have, with its reason',
    async (back) => {
      // The transport goes at PING_INTERVAL + PING_TIMEOUT: its window ends RECOVERY_WINDOW later.
      const { session, owner } = await awayByPingTimeout()
      vi.advanceTimersByTime(1000)
      session.freeze(() => {})
      vi.advanceTimersByTime(1500)
      session[back]()
      expect(session.state).toBe('detached')
      expect(session.recoveryLeft()).toBe(RECOVERY_WINDOW - 2500)
      vi.advanceTimersByTime(RECOVERY_WINDOW - 2500 - 1)
      await turn()
      await turn()
      expect(owner.ends).toEqual([])
      await advance(1)
      expect(owner.ends).toEqual(['ping timeout'])
      expect(session.state).toBe('closed')
    },
  )

  it.each(['thaw', 'unfreeze'] as const)(
    'frozen with its client away until its window was spent, after %s ends as that window would',
    async (back) => {
      const { session, owner } = setup()
      const transport = new FakeTransport()
      session.attach(transport, 0, false)
      transport.lose('transport close')
      session.freeze(() => {})
      vi.advanceTimersByTime(RECOVERY_WINDOW + 10)
      session[back]()
      // Its verdict, due, waits its turns: a resume read in them would still keep the session.
      expect(owner.ends).toEqual([])
      await advance(1)
      expect(owner.ends).toEqual(['transport close'])
      expect(session.state).toBe('closed')
    },
  )

  it('frozen with its client connected, after thaw waits a whole window from then', async () => {
    const { session, owner } = setup()
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    session.freeze(() => {})
    vi.advanceTimersByTime(RECOVERY_WINDOW + 10)
    session.thaw()
    expect(transport.open).toBe(false)
    expect(session.recoveryLeft()).toBe(RECOVERY_WINDOW)
    vi.advanceTimersByTime(RECOVERY_WINDOW - 1)
    await turn()
    await turn()
    expect(owner.ends).toEqual([])
    await advance(1)
    expect(owner.ends).toEqual(['transport close'])
  })

  it('frozen with its client connected, goes on when asked to end for a spent window', async () => {
    const { session, owner } = setup()
    session.attach(new FakeTransport(), 0, false)
    session.freeze(() => {})
    await advance(RECOVERY_WINDOW + 10)
    expect(session.endIfWindowSpent()).toBe(false)
    expect(session.state).toBe('frozen')
    expect(owner.ends).toEqual([])
  })

  it('goes on when asked to end for a spent window while its client is connected', () => {
    const { session, owner } = setup()
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    expect(session.endIfWindowSpent()).toBe(false)
    expect(session.state).toBe('attached')
    expect(owner.ends).toEqual([])
  })

  it('lives on when a transport comes back within the recovery window', () => {
    const { session, owner } = setup()
    const first = new FakeTransport()
    session.attach(first, 0, false)
    first.lose('transport close')
    vi.advanceTimersByTime(RECOVERY_WINDOW - 1)
    const second = new FakeTransport()
    session.attach(second, 0, true)
    // Past the moment the window would have closed (and short of the next PING).
    vi.advanceTimersByTime(2)
    expect(owner.ends).toEqual([])
    expect(session.state).toBe('attached')
  })

  it('ends at once on transport loss when recovery is disabled', () => {
    const { session, owner } = setup({ recoveryWindow: 0 })
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    transport.lose('transport close')
    expect(owner.ends).toEqual(['transport close'])
    expect(session.state).toBe('closed')
  })

  it.each(['payload too large'] as const)(
    'ends at once, without recovery, when the medium reports %s',
    (reason) => {
      const { session, owner } = setup()
      const transport = new FakeTransport()
      session.attach(transport, 0, false)
      transport.lose(reason)
      expect(owner.ends).toEqual([reason])
      expect(owner.changes).toEqual([])
      expect(session.state).toBe('closed')
    },
  )

  it('sends CLOSE with the reason, message and retryAfter, then closes the transport as asked', () => {
    const { session, owner } = setup()
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    session.end('server shutdown', { message: 'maintenance', retryAfter: 3000, kind: 'shutdown' })
    expect(transport.last()).toEqual({
      type: PacketType.CLOSE,
      reason: 'server shutdown',
      message: 'maintenance',
      retryAfter: 3000,
    })
    expect(transport.closedWith).toBe('shutdown')
    expect(owner.ends).toEqual(['server shutdown'])
  })

  it('hands a transport that still holds its CLOSE to linger', () => {
    const { session, config } = setup()
    const transport = new FakeTransport('polling')
    transport.lingering = true
    session.attach(transport, 0, false)
    session.end('server disconnect')
    expect(config.linger).toHaveBeenCalledWith(session.sid, transport)
  })

  it('ends once: a second end() sends nothing and tells the owner nothing', () => {
    const { session, owner } = setup()
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    sendEvents(session, 2)
    session.end('server disconnect')
    session.end('server shutdown')
    expect(owner.ends).toEqual(['server disconnect'])
    expect(transport.types().filter((type) => type === PacketType.CLOSE)).toHaveLength(1)
    expect(session.keptBytes).toBe(0)
    expect(session.sendNumbered((seq) => event(seq))).toBe(false)
    expect(session.sendVolatile(event(0))).toBe(false)
    // No timer of the session outlives it.
    vi.advanceTimersByTime(RECOVERY_WINDOW * 2)
    expect(owner.ends).toEqual(['server disconnect'])
    expect(transport.types().filter((type) => type === PacketType.PING)).toEqual([])
  })

  it('ends a detached session without a transport to tell', () => {
    const { session, owner } = setup()
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    transport.lose('transport close')
    session.end('server disconnect')
    expect(owner.ends).toEqual(['server disconnect'])
    vi.advanceTimersByTime(RECOVERY_WINDOW)
    expect(owner.ends).toEqual(['server disconnect'])
  })
})

describe('Session: heartbeat', () => {
  const pings = (transport: FakeTransport) =>
    transport.types().filter((type) => type === PacketType.PING).length

  it('sends PING after pingInterval', async () => {
    const { session } = setup()
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    await advance(PING_INTERVAL - 1)
    expect(pings(transport)).toBe(0)
    await advance(1)
    expect(pings(transport)).toBe(1)
    expect(transport.last()).toEqual({ type: PacketType.PING })
  })

  it('detaches with ping timeout when nothing is heard within pingTimeout', async () => {
    const { session, owner } = setup()
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    await advance(PING_INTERVAL + PING_TIMEOUT - 1)
    expect(session.state).toBe('attached')
    await advance(1)
    expect(session.state).toBe('detached')
    expect(transport.open).toBe(false)
    expect(owner.changes).toEqual([[null, 'websocket']])
    await advance(RECOVERY_WINDOW)
    expect(owner.ends).toEqual(['ping timeout'])
  })

  it('ends with ping timeout at once when recovery is disabled', async () => {
    const { session, owner } = setup({ recoveryWindow: 0 })
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    await advance(PING_INTERVAL + PING_TIMEOUT)
    expect(owner.ends).toEqual(['ping timeout'])
    expect(transport.last()).toMatchObject({ type: PacketType.CLOSE, reason: 'ping timeout' })
  })

  it('stays attached and pings again one pingInterval later when a PONG came', async () => {
    const { session, owner } = setup()
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    await advance(PING_INTERVAL)
    transport.receive({ type: PacketType.PONG })
    await advance(PING_TIMEOUT)
    expect(session.state).toBe('attached')
    await advance(PING_INTERVAL - PING_TIMEOUT - 1)
    expect(pings(transport)).toBe(1)
    await advance(1)
    expect(pings(transport)).toBe(2)
    // No answer this time.
    await advance(PING_TIMEOUT)
    expect(session.state).toBe('detached')
    expect(owner.ends).toEqual([])
  })

  it('counts any packet from the client as a sign of life', async () => {
    const { session } = setup()
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    await advance(PING_INTERVAL)
    transport.receive(event(1))
    await advance(PING_TIMEOUT)
    expect(session.state).toBe('attached')
  })

  it('stops pinging while detached and starts again on the next transport', async () => {
    const { session } = setup()
    const first = new FakeTransport()
    session.attach(first, 0, false)
    first.lose('transport close')
    await advance(PING_INTERVAL * 3)
    expect(pings(first)).toBe(0)
    const second = new FakeTransport()
    session.attach(second, 0, true)
    await advance(PING_INTERVAL)
    expect(pings(second)).toBe(1)
  })
})

describe('Session: an attach to SSE or polling waits for its first GET', () => {
  const pings = (transport: FakeTransport) =>
    transport.types().filter((type) => type === PacketType.PING).length

  /** A transport whose OPEN goes in a POST's answer, the client then asking for the downstream. */
  const http = (name: TransportName = 'sse') =>
    Object.assign(new FakeTransport(name), { downstreamFollows: true })

  /** handshakeTimeout + pingInterval + pingTimeout: how long the first GET may take. */
  const FIRST_GET = HANDSHAKE_TIMEOUT + PING_INTERVAL + PING_TIMEOUT

  it('ends a new session whose client sent nothing by handshakeTimeout + pingInterval + pingTimeout, keeping only the CLOSE', async () => {
    const { session, owner, config } = setup()
    const transport = http()
    session.attach(transport, 0, false)
    session.sendNumbered((seq) => event(seq, 'welcome'))
    expect(session.awaitingClient).toBe(true)
    await advance(PING_INTERVAL - 1)
    expect(pings(transport)).toBe(0)
    await advance(1)
    // The first PING goes as after any attach: a client whose GET is late still gets it.
    expect(pings(transport)).toBe(1)
    expect(session.awaitingClient).toBe(true)
    // Past the first heartbeat, which counted from the OPEN would have ended it.
    await advance(FIRST_GET - PING_INTERVAL - 1)
    expect(owner.ends).toEqual([])
    expect(session.state).toBe('attached')
    await advance(1)
    expect(owner.ends).toEqual(['transport close'])
    expect(session.awaitingClient).toBe(false)
    expect(transport.last()).toMatchObject({ type: PacketType.CLOSE, reason: 'transport close' })
    // What waited for the client is dropped: it never came to read it.
    expect(transport.closedWith).toBe('overflow')
    const close = transport.last() as ClosePacket
    expect(close.message).toMatch(
      /no request came for the new session within handshakeTimeout \+ pingInterval \+ pingTimeout/,
    )
    // The same CLOSE answers a resume that comes after all.
    expect(vi.mocked(config.ended).mock.calls).toEqual([
      [session.sid, expect.objectContaining({ packet: close }), 0],
    ])
  })

  it.each(['sse', 'polling'] as const)(
    'keeps a session whose %s GET came late within the bound, the PING it takes timed from that GET',
    async (name) => {
      const { session, owner } = setup()
      const transport = http(name)
      session.attach(transport, 0, false)
      await advance(FIRST_GET - 1)
      transport.downstream()
      expect(session.awaitingClient).toBe(false)
      await advance(1)
      expect(owner.ends).toEqual([])
      // The PING that waited went with the GET: its answer is due pingTimeout from the GET.
      await advance(PING_TIMEOUT - 2)
      transport.receive({ type: PacketType.PONG })
      await advance(1)
      expect(session.state).toBe('attached')
      expect(pings(transport)).toBe(1)
      // From here the heartbeat as after any attach: the next PING a pingInterval after the first.
      await advance(Math.max(0, PING_INTERVAL - PING_TIMEOUT))
      expect(pings(transport)).toBe(2)
    },
  )

  it('detaches a transport whose late first GET brought the PING and no answer within pingTimeout', async () => {
    const { session, owner } = setup()
    const transport = http('polling')
    session.attach(transport, 0, false)
    await advance(PING_INTERVAL + PING_TIMEOUT)
    transport.downstream()
    await advance(PING_TIMEOUT - 1)
    expect(session.state).toBe('attached')
    await advance(1)
    expect(session.state).toBe('detached')
    expect(owner.ends).toEqual([])
  })

  it('runs the heartbeat from the attach when the GET came before the first PING', async () => {
    const { session } = setup()
    const transport = http()
    session.attach(transport, 0, false)
    transport.downstream()
    expect(session.awaitingClient).toBe(false)
    await advance(PING_INTERVAL)
    expect(pings(transport)).toBe(1)
    await advance(PING_TIMEOUT)
    expect(session.state).toBe('detached')
  })

  it('lets go of the transport of a new session whose client sent a POST and no GET, and waits for a resume', async () => {
    const { session, owner } = setup()
    const transport = http()
    session.attach(transport, 0, false)
    transport.receive({ type: PacketType.ACK, ack: 0 })
    expect(session.awaitingClient).toBe(false)
    await advance(FIRST_GET - 1)
    expect(session.state).toBe('attached')
    await advance(1)
    // Its client knows the session: the recovery window, as for a lost transport.
    expect(session.state).toBe('detached')
    expect(owner.ends).toEqual([])
    expect(owner.changes).toEqual([[null, 'sse']])
    await advance(RECOVERY_WINDOW)
    expect(owner.ends).toEqual(['transport close'])
  })

  it('counts no GET for a transport that is no longer attached', async () => {
    const { session, owner } = setup()
    const transport = http()
    session.attach(transport, 0, false)
    const stale = http()
    stale.bind(session)
    stale.downstream()
    await advance(FIRST_GET)
    expect(owner.ends).toEqual(['transport close'])
  })

  it.each(['sse', 'polling'] as const)(
    'keeps a resume over %s past the first heartbeat until its GET, then detaches it, its queue kept',
    async (name) => {
      const { session, owner } = setup()
      session.attach(new FakeTransport(), 0, false)
      const again = http(name)
      session.attach(again, 0, true)
      session.sendNumbered((seq) => event(seq, 'while away'))
      // The client proved it knew the session: nothing counts as a new one's client never coming.
      expect(session.awaitingClient).toBe(false)
      await advance(PING_INTERVAL + PING_TIMEOUT)
      expect(session.state).toBe('attached')
      await advance(FIRST_GET - PING_INTERVAL - PING_TIMEOUT)
      expect(session.state).toBe('detached')
      expect(owner.ends).toEqual([])
      // Its queue waits for the next resume, in the recovery window.
      const resumed = new FakeTransport()
      session.attach(resumed, 0, true)
      expect(resumed.eventSeqs()).toEqual([1])
    },
  )

  it('leaves a new WebSocket session to the heartbeat from its attach', async () => {
    const { session, owner } = setup()
    session.attach(new FakeTransport('websocket'), 0, false)
    expect(session.awaitingClient).toBe(false)
    await advance(PING_INTERVAL + PING_TIMEOUT)
    expect(session.state).toBe('detached')
    expect(owner.ends).toEqual([])
  })
})

describe('Session: buffers', () => {
  it('asks for the ACK with one PING once kept bytes pass a quarter of highWaterMark, again after an ACK', () => {
    const { session } = setup({ highWaterMark: 4000 })
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    const pings = () => transport.types().filter((type) => type === PacketType.PING).length
    const big = 'x'.repeat(200)
    // Each kept packet counts its text and 64: the fourth passes 1000 bytes.
    for (let i = 0; i < 3; i++) session.sendNumbered((seq) => event(seq, 'big', [big]))
    expect(session.keptBytes).toBeLessThan(1000)
    expect(pings()).toBe(0)
    session.sendNumbered((seq) => event(seq, 'big', [big]))
    expect(session.keptBytes).toBeGreaterThanOrEqual(1000)
    // After the packet that crossed, so that the ACK it asks for covers it.
    expect(transport.types().slice(-2)).toEqual([PacketType.EVENT, PacketType.PING])
    for (let i = 0; i < 5; i++) session.sendNumbered((seq) => event(seq, 'big', [big]))
    expect(pings()).toBe(1)
    transport.receive({ type: PacketType.ACK, ack: 9 })
    expect(session.keptBytes).toBe(0)
    for (let i = 0; i < 4; i++) session.sendNumbered((seq) => event(seq, 'big', [big]))
    expect(pings()).toBe(2)
  })

  it("keeps a packet of its own as its text: the application's values in it are free before the ACK", async () => {
    // A full collection on demand, as `--expose-gc` would give.
    setFlagsFromString('--expose-gc')
    const collect = runInNewContext('gc') as () => void
    class TextOnly extends FakeTransport {
      readonly texts: string[] = []
      override send(out: Outgoing): void {
        this.texts.push(out.text)
      }
    }
    const { session } = setup()
    const first = new TextOnly()
    session.attach(first, 0, false)
    let sent: WeakRef<object> | undefined
    ;(() => {
      const value = { note: 'the application made this', list: [1, 2, 3] }
      sent = new WeakRef(value)
      session.sendNumbered((seq) => event(seq, 'news', [value]))
    })()
    // A WeakRef keeps its target for the rest of the job that made it: collect in the next one.
    await vi.waitFor(() => {
      collect()
      if (sent!.deref() !== undefined) throw new Error('still held')
    })
    expect(session.keptBytes).toBeGreaterThan(0)

    // Not acknowledged: the next transport gets it again, the same text, and its packet.
    first.lose('transport close')
    const second = new FakeTransport()
    session.attach(second, 0, true)
    expect(second.sent.filter((p) => p.type === PacketType.EVENT)).toEqual([
      event(1, 'news', [{ note: 'the application made this', list: [1, 2, 3] }]),
    ])
  })

  it('asks again on a new transport: the PING before may have been lost with the old one', () => {
    const { session } = setup({ highWaterMark: 4000 })
    const first = new FakeTransport()
    session.attach(first, 0, false)
    const big = 'x'.repeat(200)
    for (let i = 0; i < 4; i++) session.sendNumbered((seq) => event(seq, 'big', [big]))
    expect(first.types()).toContain(PacketType.PING)
    first.lose('transport close')
    const second = new FakeTransport()
    session.attach(second, 0, true)
    expect(second.types()).not.toContain(PacketType.PING)
    session.sendNumbered((seq) => event(seq, 'big', [big]))
    expect(second.types().filter((type) => type === PacketType.PING)).toHaveLength(1)
  })

  it('ends with slow consumer, dropping the transport, when kept bytes pass maxBufferedBytes', () => {
    const { session, owner } = setup({ maxBufferedBytes: 1000 })
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    const big = 'x'.repeat(400)
    session.sendNumbered((seq) => event(seq, 'big', [big]))
    session.sendNumbered((seq) => event(seq, 'big', [big]))
    expect(owner.ends).toEqual([])
    session.sendNumbered((seq) => event(seq, 'big', [big]))
    expect(owner.ends).toEqual(['slow consumer'])
    expect(transport.last()).toMatchObject({ type: PacketType.CLOSE, reason: 'slow consumer' })
    expect(transport.closedWith).toBe('overflow')
  })

  it('ends with slow consumer when the transport queue passes maxBufferedBytes', () => {
    const { session, owner } = setup({ maxBufferedBytes: 1000, highWaterMark: 5000 })
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    transport.bufferedAmount = 1000
    session.sendVolatile(event(0))
    expect(owner.ends).toEqual([])
    transport.bufferedAmount = 1001
    expect(session.bufferedAmount).toBe(1001)
    session.sendVolatile(event(0))
    expect(owner.ends).toEqual(['slow consumer'])
  })

  it('counts what it keeps for a detached client against maxBufferedBytes', () => {
    const { session, owner } = setup({ maxBufferedBytes: 1000 })
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    transport.lose('transport close')
    const big = 'x'.repeat(400)
    for (let i = 0; i < 3; i++) session.sendNumbered((seq) => event(seq, 'big', [big]))
    expect(owner.ends).toEqual(['slow consumer'])
  })

  it('sends volatile events unnumbered and keeps nothing of them', () => {
    const { session } = setup()
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    expect(session.sendVolatile(event(5, 'v'))).toBe(true)
    expect(transport.last()).toMatchObject({ type: PacketType.EVENT, seq: 0, name: 'v' })
    expect(session.keptBytes).toBe(0)
  })

  it('drops volatile events while the buffer is at or past highWaterMark', () => {
    const { session } = setup({ highWaterMark: 1000 })
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    transport.bufferedAmount = 999
    expect(session.sendVolatile(event(0, 'under'))).toBe(true)
    transport.bufferedAmount = 1000
    expect(session.sendVolatile(event(0, 'at'))).toBe(false)
    transport.bufferedAmount = 0
    session.sendNumbered((seq) => event(seq, 'kept', ['x'.repeat(1000)]))
    expect(session.bufferedAmount).toBeGreaterThanOrEqual(1000)
    expect(session.sendVolatile(event(0, 'behind kept'))).toBe(false)
    const names = transport.sent.flatMap((packet) => (packet.type === PacketType.EVENT ? [packet.name] : []))
    expect(names).toEqual(['under', 'kept'])
  })

  it('encodes a volatile event given as a function only when it goes out', () => {
    const { session } = setup({ highWaterMark: 1000 })
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    const encode = vi.fn(() => outgoing(event(0, 'lazy')))
    expect(session.sendVolatile(encode)).toBe(true)
    expect(encode).toHaveBeenCalledOnce()
    transport.bufferedAmount = 1000
    expect(session.sendVolatile(encode)).toBe(false)
    expect(encode).toHaveBeenCalledOnce()
  })

  it('drops volatile events while detached and does not replay them', () => {
    const { session } = setup()
    const first = new FakeTransport()
    session.attach(first, 0, false)
    first.lose('transport close')
    expect(session.sendVolatile(event(0, 'lost'))).toBe(false)
    const second = new FakeTransport()
    session.attach(second, 0, true)
    expect(second.types()).toEqual([PacketType.OPEN])
  })

  it('drops volatile events when the transport has already closed', () => {
    const { session } = setup()
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    transport.open = false
    expect(session.sendVolatile(event(0))).toBe(false)
  })
})

describe('Session: freeze, hand off, restore', () => {
  /** A session with three events sent, the first acknowledged, frozen into `tail`. */
  function frozen() {
    const { session, owner, config } = setup()
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    transport.receive(event(1, 'in'))
    sendEvents(session, 3)
    transport.receive({ type: PacketType.ACK, ack: 1 })
    const tail: string[] = []
    const books = session.freeze((text) => tail.push(text))
    return { session, owner, config, transport, tail, books }
  }

  it('stops reading at the freeze and describes the books as they stand', () => {
    const { session, owner, transport, books } = frozen()
    expect(session.state).toBe('frozen')
    expect(books).toMatchObject({ sid: session.sid, id: session.id, inSeq: 1, outSeq: 3 })
    expect(books.kept.map((text) => JSON.parse(text)[1])).toEqual([2, 3])
    transport.receive(event(2, 'late'))
    expect(owner.messages.map((m) => (m.type === PacketType.EVENT ? m.name : m.type))).toEqual(['in'])
    expect(() => session.freeze(() => {})).toThrow()
  })

  it("reads its client's goodbye once frozen, and nothing else", () => {
    const { session, owner, transport } = frozen()
    transport.receive(event(2, 'late'))
    expect(session.state).toBe('frozen')
    const sent = transport.sent.length
    transport.receive({ type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' })
    expect(session.state).toBe('closed')
    expect(owner.ends).toEqual(['client disconnect'])
    expect(owner.messages.map((m) => (m.type === PacketType.EVENT ? m.name : m.type))).toEqual(['in'])
    // Ended as on a goodbye heard at any other time: nothing more said to the client.
    expect(transport.sent.length).toBe(sent)
  })

  it('keeps pinging while frozen, a pingInterval apart, and checks no PONG (it reads none)', async () => {
    const { session, transport } = frozen()
    const pings = () => transport.types().filter((type) => type === PacketType.PING).length
    // Frozen for longer than a client's patience (pingInterval + pingTimeout) several times over.
    await advance(PING_INTERVAL)
    expect(pings()).toBe(1)
    await advance(PING_INTERVAL * 3)
    expect(pings()).toBe(4)
    expect(session.state).toBe('frozen')
    expect(transport.open).toBe(true)
    // Handed off: the transport is closed, and the PINGs stop with it.
    session.handOff(0)
    await advance(PING_INTERVAL * 3)
    expect(pings()).toBe(4)
    session.moved()
    await advance(PING_INTERVAL * 3)
    expect(session.state).toBe('closed')
  })

  it('does not time out a PING sent just before the freeze', async () => {
    const { session } = setup()
    const live = new FakeTransport()
    session.attach(live, 0, false)
    await advance(PING_INTERVAL)
    expect(live.last()).toEqual({ type: PacketType.PING })
    session.freeze(() => {})
    await advance(PING_TIMEOUT + PING_INTERVAL)
    expect(session.state).toBe('frozen')
    expect(live.open).toBe(true)
    expect(live.types().filter((type) => type === PacketType.PING).length).toBe(2)
  })

  it('numbers what is sent after the freeze into the tail, in order, not to the transport', () => {
    const { session, transport, tail } = frozen()
    const before = transport.sent.length
    sendEvents(session, 2)
    expect(transport.sent.length).toBe(before)
    expect(tail.map((text) => JSON.parse(text)[1])).toEqual([4, 5])
  })

  it('tells the client to resume elsewhere with retryAfter, and refuses to attach again', () => {
    const { session, transport } = frozen()
    session.handOff(120)
    expect(transport.last()).toMatchObject({
      type: PacketType.CLOSE,
      reason: 'server handoff',
      retryAfter: 120,
    })
    expect(transport.open).toBe(false)
    expect(session.state).toBe('frozen')
    expect(() => session.attach(new FakeTransport(), 0, true)).toThrow(/handed off/)
  })

  it('sends MOVED, not CLOSE, when the client already resumed on another node', () => {
    const { session, transport } = frozen()
    session.handOff(0, true)
    expect(transport.last()).toEqual({ type: PacketType.MOVED })
    expect(transport.open).toBe(false)
    expect(session.state).toBe('frozen')
  })

  it('thaws when the snapshot was not stored: waits for a resume, which replays everything kept', () => {
    const { session, transport } = frozen()
    sendEvents(session, 2)
    session.thaw()
    expect(session.state).toBe('detached')
    expect(transport.open).toBe(false)
    const next = new FakeTransport()
    session.attach(next, 1, true)
    expect(next.last()).toMatchObject({ type: PacketType.EVENT, seq: 5 })
    const numbered = next.sent
      .filter((p) => p.type === PacketType.EVENT)
      .map((p) => (p as { seq: number }).seq)
    expect(numbered).toEqual([2, 3, 4, 5])
    // Read again: a message from the client is taken.
    next.receive(event(2, 'after'))
    sendEvents(session, 1)
    expect(next.last()).toMatchObject({ type: PacketType.EVENT, seq: 6 })
  })

  it('unfreezes on its transport when the snapshot was not stored: what was numbered since goes on it, events are refused', () => {
    const { session, owner, transport, tail } = frozen()
    sendEvents(session, 2)
    const before = transport.sent.length
    session.unfreeze()
    expect(session.state).toBe('attached')
    expect(transport.open).toBe(true)
    // Only what the freeze kept from the transport, in order.
    const numbered = transport.sent.slice(before).map((p) => (p as { seq: number }).seq)
    expect(numbered).toEqual([4, 5])
    sendEvents(session, 1)
    expect(transport.last()).toMatchObject({ type: PacketType.EVENT, seq: 6 })
    expect(tail.map((text) => JSON.parse(text)[1])).toEqual([4, 5])
    // Read again: a reply is taken, an event refused (its client sends it to the next server).
    transport.receive({ type: PacketType.REPLY, seq: 2, ackId: 3, args: [] })
    transport.receive(event(3, 'refused'))
    expect(owner.messages.map((m) => (m.type === PacketType.EVENT ? m.name : m.type))).toEqual([
      'in',
      PacketType.REPLY,
    ])
  })

  it('unfreezes detached when its transport was lost while it was frozen', () => {
    const { session, transport } = frozen()
    transport.lose('transport close')
    session.unfreeze()
    expect(session.state).toBe('detached')
  })

  /** Thawed after a move given up on, inbound held (as `ServerSocket.thaw` does), resumed. */
  function thawedHolding(overrides: Partial<SessionConfig> = {}) {
    const { session, owner } = setup(overrides)
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    transport.receive(event(1, 'in'))
    session.freeze(() => {})
    session.thaw()
    session.holdInbound()
    const next = new FakeTransport()
    session.attach(next, 0, true)
    const acks = () => next.sent.flatMap((p) => (p.type === PacketType.ACK ? [p.ack] : []))
    return { session, owner, next, acks }
  }

  const names = (owner: FakeOwner) =>
    owner.messages.map((p) => (p.type === PacketType.EVENT ? p.name : p.type))

  it('holds what the client sends after a thaw, unacknowledged, until released; then takes it in order', () => {
    const { session, owner, next, acks } = thawedHolding()
    expect(openOf(next).ack).toBe(1)
    next.receive(event(2, 'two'))
    next.receive(event(0, 'volatile'))
    next.receive(event(3, 'three'))
    // A replay after a switch repeats what is held: not held twice.
    next.receive(event(2, 'two'))
    vi.advanceTimersByTime(PING_INTERVAL - 1)
    expect(names(owner)).toEqual(['in'])
    expect(acks().filter((ack) => ack > 1)).toEqual([])
    // A resume meanwhile tells the client it still has them to send.
    const again = new FakeTransport()
    session.attach(again, 0, true)
    expect(openOf(again).ack).toBe(1)
    again.receive(event(2, 'two'))
    again.receive(event(3, 'three'))
    again.receive(event(4, 'four'))
    session.releaseInbound()
    expect(names(owner)).toEqual(['in', 'two', 'volatile', 'three', 'four'])
    vi.advanceTimersByTime(PING_INTERVAL - 1)
    expect(again.sent.flatMap((p) => (p.type === PacketType.ACK ? [p.ack] : []))).toEqual([4])
    // Taken as usual from now on.
    again.receive(event(5, 'five'))
    expect(names(owner).at(-1)).toBe('five')
  })

  it('drops what it held when another node took the session over: none of it runs here', () => {
    const { session, owner, next } = thawedHolding()
    next.receive(event(2, 'two'))
    session.moved()
    session.releaseInbound()
    expect(names(owner)).toEqual(['in'])
  })

  it('holds no more than maxBufferedBytes: what comes past it waits for the next resume', () => {
    const { session, owner, next } = thawedHolding({ maxBufferedBytes: 100 })
    next.receive(event(2, 'two'), 60)
    next.receive(event(3, 'three'), 60)
    next.receive(event(4, 'four'), 30)
    session.releaseInbound()
    expect(names(owner)).toEqual(['in', 'two'])
    expect(session.state).toBe('attached')
    // The client sends 3 and 4 again on its next resume (never acknowledged).
    const again = new FakeTransport()
    session.attach(again, 0, true)
    expect(openOf(again).ack).toBe(2)
    again.receive(event(3, 'three'), 60)
    again.receive(event(4, 'four'), 30)
    expect(names(owner)).toEqual(['in', 'two', 'three', 'four'])
  })

  it('ends without a word to the client when another node took it over', () => {
    const { session, owner, transport } = frozen()
    session.handOff(0)
    const sent = transport.sent.length
    session.moved()
    expect(session.state).toBe('closed')
    expect(owner.ends).toEqual(['server handoff'])
    expect(transport.sent.length).toBe(sent)
  })

  /**
   * A session frozen with `tailed` events in its tail, restored on another node, where `held`
   * is sent before the tail is in.
   */
  function restoredWithHeld(tailed: number, held: string) {
    const { session, books, tail } = frozen()
    sendEvents(session, tailed)
    const restored = new Session(setup().config, books)
    restored.setOwner(new FakeOwner())
    restored.sendNumbered((seq) => event(seq, held))
    return { restored, tail }
  }

  /** The EVENTs `transport` sent, as [seq, name]. */
  const eventsSent = (transport: FakeTransport) =>
    transport.sent.flatMap((p) => (p.type === PacketType.EVENT ? [[p.seq, p.name]] : []))

  it('restores on another node: the kept packets, then the tail, then what was sent meanwhile', () => {
    // Sent on the new node before the tail is in: held, numbered after it.
    const { restored, tail } = restoredWithHeld(2, 'new')
    expect(restored.release(tail, 1)).toBe(0)
    const transport = new FakeTransport()
    restored.attach(transport, 1, true)
    expect(openOf(transport).recovered).toBe(true)
    expect(eventsSent(transport)).toEqual([
      [2, 'm2'],
      [3, 'm3'],
      [4, 'm4'],
      [5, 'm5'],
      [6, 'new'],
    ])
  })

  it('numbers what it sends after the client when the client has more than the snapshot and its tail', () => {
    // The old node went on past its snapshot (5 and 6 after m4) and recorded none of it.
    const { restored, tail } = restoredWithHeld(1, 'held')
    expect(restored.release(tail, 6)).toBe(2)
    restored.sendNumbered((seq) => event(seq, 'after'))
    const transport = new FakeTransport()
    restored.attach(transport, 6, true)
    expect(eventsSent(transport)).toEqual([
      [7, 'held'],
      [8, 'after'],
    ])
    // The client's ACKs go on from there, and what they cover is forgotten.
    transport.receive({ type: PacketType.ACK, ack: 8 })
    expect(restored.keptBytes).toBe(0)
  })

  it('refuses a tail that does not follow the snapshot, keeping none of it', () => {
    const { session, books, tail } = frozen()
    sendEvents(session, 2)
    const { config } = setup()
    const restored = new Session(config, books)
    expect(restored.release([tail[1]!, tail[0]!], 1)).toBeUndefined()
    const gap = new Session(config, books)
    expect(gap.release([tail[1]!], 1)).toBeUndefined()
  })

  it('refuses a snapshot whose kept packets are out of order', () => {
    const { books } = frozen()
    const { config } = setup()
    expect(() => new Session(config, { ...books, kept: [...books.kept].reverse() })).toThrow(ParleyError)
  })
})

describe('Session: long packets kept as UTF-8', () => {
  /** Records what each packet looked like on its way out: its text, and its bytes if it had them. */
  /** A packet's bytes, when it is all bytes (kept as UTF-8: an empty `head`). */
  const bytesOf = (split: SplitText | undefined) =>
    split && split.head === '' ? Buffer.from(split.tail).toString('utf8') : undefined
  class RecordingTransport extends FakeTransport {
    readonly outs: { text: string; utf8: string | undefined }[] = []
    override send(out: Outgoing): void {
      super.send(out)
      if (out.packet.type === PacketType.EVENT)
        this.outs.push({ text: out.text, utf8: bytesOf(out.split?.()) })
    }
  }
  // Two-, three- and four-byte characters, past KEEP_AS_UTF8_FROM.
  const long = 'é€😀x'.repeat(5000)
  const limits = { maxPayload: 1_000_000, maxBufferedBytes: 1_000_000, highWaterMark: 1_000_000 }

  it('sends a long text over WebSocket as its bytes, and replays it byte for byte over polling', () => {
    const { session } = setup(limits)
    const ws = new RecordingTransport('websocket')
    session.attach(ws, 0, false)
    session.sendNumbered((seq) => event(seq, 'big', [long]))
    session.sendNumbered((seq) => event(seq, 'big', [long]))
    session.sendNumbered((seq) => event(seq, 'small', ['hi']))
    const wire = (seq: number, name: string, arg: string) =>
      JSON.stringify([PacketType.EVENT, seq, name, [arg], 0])
    expect(ws.outs).toEqual([
      { text: wire(1, 'big', long), utf8: wire(1, 'big', long) },
      { text: wire(2, 'big', long), utf8: wire(2, 'big', long) },
      // Short texts stay strings.
      { text: wire(3, 'small', 'hi'), utf8: undefined },
    ])
    const kept = session.keptBytes
    expect(kept).toBeGreaterThan(2 * wire(1, 'big', long).length)

    ws.lose('transport close')
    const polling = new RecordingTransport('polling')
    session.attach(polling, 1, true)
    // 2 and 3 again, as text (what polling writes), with the packets they encode.
    expect(polling.outs.map((o) => o.text)).toEqual([wire(2, 'big', long), wire(3, 'small', 'hi')])
    expect(polling.eventSeqs()).toEqual([2, 3])
    expect(polling.sent.filter((p) => p.type === PacketType.EVENT)).toEqual([
      event(2, 'big', [long]),
      event(3, 'small', ['hi']),
    ])
    // Counted as their text's length, going in and out of the buffer alike.
    polling.receive({ type: PacketType.ACK, ack: 3 })
    expect(session.keptBytes).toBe(0)
  })

  it('keeps a long text as bytes over SSE too, and as text over polling, which joins texts', () => {
    const text = JSON.stringify([PacketType.EVENT, 1, 'big', [long], 0])
    for (const [name, utf8] of [
      ['sse', text],
      ['polling', undefined],
    ] as const) {
      const { session } = setup(limits)
      const transport = new RecordingTransport(name)
      session.attach(transport, 0, false)
      session.sendNumbered((seq) => event(seq, 'big', [long]))
      expect(transport.outs, name).toEqual([{ text, utf8 }])
    }
  })

  it('hands a long packet kept as UTF-8 to another node as its text', () => {
    const { session } = setup(limits)
    const ws = new RecordingTransport('websocket')
    session.attach(ws, 0, false)
    session.sendNumbered((seq) => event(seq, 'big', [long]))
    const books = session.freeze(() => {})
    expect(books.kept).toEqual([JSON.stringify([PacketType.EVENT, 1, 'big', [long], 0])])
  })
})

describe("a broadcast's copy for one session", () => {
  it('tells its text length without making the text, and it is the text that comes', () => {
    const prepared = prepareEvent('news', ['é€😀 hello', { n: 1 }])
    for (const [seq, ackId] of [
      [1, 0],
      [9, 0],
      [10, 7],
      [123_456, 99],
    ] as const) {
      const copy = preparedOutgoing(prepared, seq, ackId)
      const length = copy.textLength
      expect(length).toBe(
        JSON.stringify([PacketType.EVENT, seq, 'news', ['é€😀 hello', { n: 1 }], ackId]).length,
      )
      expect(copy.text.length).toBe(length)
    }
  })
})

describe('Session: refusing events at shutdown', () => {
  it('takes replies, also past the first event after it, once each, and acknowledges none of that event or what follows', () => {
    const { session, owner } = setup()
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    transport.receive(event(1, 'before'))
    session.refuseEvents()
    transport.receive({ type: PacketType.REPLY, seq: 2, ackId: 7, args: ['answer'] })
    transport.receive(event(3, 'late'))
    // Out of order once the event was dropped: a reply after it is taken all the same (a
    // middleware may await it), once (a replay repeats it), and not acknowledged.
    transport.receive({ type: PacketType.REPLY, seq: 4, ackId: 8, args: [] })
    transport.receive({ type: PacketType.REPLY, seq: 4, ackId: 8, args: [] })
    transport.receive(event(5, 'later'))
    vi.advanceTimersByTime(PING_INTERVAL - 1)
    expect(owner.messages.map((p) => (p.type === PacketType.EVENT ? p.name : [p.type, p.seq]))).toEqual([
      'before',
      [PacketType.REPLY, 2],
      [PacketType.REPLY, 4],
    ])
    const acks = transport.sent.flatMap((p) => (p.type === PacketType.ACK ? [p.ack] : []))
    expect(Math.max(0, ...acks)).toBe(2)
  })

  it('sends the ACK it owes right before its CLOSE, covering what it took and not what it refused', () => {
    const { session } = setup()
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    transport.receive(event(1, 'one'))
    transport.receive(event(2, 'two'))
    session.refuseEvents()
    transport.receive(event(3, 'late'))
    // Within the ACK's delay: nothing acknowledged yet.
    expect(transport.sent.some((p) => p.type === PacketType.ACK)).toBe(false)
    session.end('server shutdown', { retryAfter: 0, kind: 'shutdown' })
    const last = transport.sent.slice(-2)
    expect(last).toMatchObject([
      { type: PacketType.ACK, ack: 2 },
      { type: PacketType.CLOSE, reason: 'server shutdown' },
    ])
  })

  it('sends no ACK before its CLOSE when it owes none', () => {
    const { session } = setup()
    const transport = new FakeTransport()
    session.attach(transport, 0, false)
    transport.receive(event(1, 'one'))
    vi.advanceTimersByTime(300)
    const acks = transport.sent.filter((p) => p.type === PacketType.ACK).length
    session.end('server shutdown')
    expect(transport.sent.filter((p) => p.type === PacketType.ACK)).toHaveLength(acks)
    expect(transport.sent.at(-1)).toMatchObject({ type: PacketType.CLOSE })
  })
})
