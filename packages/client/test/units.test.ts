import {
  ErrorCode,
  type EventPacket,
  MAX_ACK_ID,
  MAX_TIMER_MS,
  PacketType,
  TRANSPORTS,
  WireLimits,
  WsCloseCode,
} from '@parley/protocol'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { Backoff, WAIT_FLOOR_MS } from '../src/backoff.js'
import * as clientCloseCode from '../src/close-code.js'
import { utf8Length } from '../src/codec.js'
import { Emitter } from '../src/emitter.js'
import { boundedBody } from '../src/http.js'
import { connect } from '../src/index.js'
import { DELIVER, DUPLICATE, GAP, Ledger } from '../src/ledger.js'
import { FIRST_STALL_TTL, MEMORY_TTL, type StorageLike, TransportMemory } from '../src/memory.js'
import { baseUrl, type ClientOptions, DEFAULTS, resolveOptions } from '../src/options.js'
import * as clientPacketType from '../src/packet-type.js'
import { TRANSPORTS as REGISTRY } from '../src/transports/registry.js'
import * as clientWireLimits from '../src/wire-limits.js'

afterEach(() => {
  vi.useRealTimers()
  vi.restoreAllMocks()
})

const event = (seq: number, name = 'e', args: EventPacket['args'] = []): EventPacket => ({
  type: PacketType.EVENT,
  seq,
  name,
  args,
  ackId: 0,
})

/** For an OPEN after which every kept packet must still go out. */
const noRefusal = () => expect.unreachable('a kept packet was refused')

const open = (sid: string, recovered: boolean, ack: number, maxPayload = 1000) => ({
  type: PacketType.OPEN,
  sid,
  id: `id_${sid}`,
  pingInterval: 1000,
  pingTimeout: 1000,
  maxPayload,
  transports: ['websocket' as const],
  recovered,
  ack,
})

describe('Ledger', () => {
  const limits = { maxQueuedMessages: 3, maxQueuedBytes: 200 }
  // What a WebSocket transport gives.
  const pace = { ackDelay: 1000, ackAfter: 32 }

  it('numbers packets from 1 and keeps them until acknowledged', () => {
    const s = new Ledger(limits, () => {})
    s.keep((seq) => event(seq))
    s.keep((seq) => event(seq))
    expect(s.kept.map((k) => k.text)).toEqual(['[5,1,"e",[],0]', '[5,2,"e",[],0]'])
    s.acked(1)
    expect(s.kept.map((k) => (k.packet as EventPacket).seq)).toEqual([2])
  })

  it('forgets a request once it is answered, with everything before it; a notice names none', () => {
    const s = new Ledger({ maxQueuedMessages: 5, maxQueuedBytes: 500 }, () => {})
    s.keep((seq) => event(seq))
    s.keep((seq) => ({ ...event(seq), ackId: 7 }))
    s.keep((seq) => ({ ...event(seq), ackId: 8 }))
    s.keep((seq) => event(seq))
    s.answered(0)
    s.answered(9)
    expect(s.kept).toHaveLength(4)
    s.answered(7)
    expect(s.kept.map((k) => (k.packet as EventPacket).seq)).toEqual([3, 4])
    // Answered again (a replay), or acknowledged already: nothing more goes.
    s.answered(7)
    expect(s.kept).toHaveLength(2)
  })

  it('forgets up to the request an answer names by its seq, not its ack id, across the wrap of ids', () => {
    const s = new Ledger({ maxQueuedMessages: 5, maxQueuedBytes: 500 }, () => {})
    const request = (ackId: number) => s.keep((seq) => ({ ...event(seq), ackId }))
    // The ids went round: the last request before the wrap, the first ones after it.
    request(MAX_ACK_ID - 1)
    request(MAX_ACK_ID)
    request(1)
    request(2)
    // The largest id, but not the last request: those after it stay.
    s.answered(MAX_ACK_ID)
    expect(s.kept.map((k) => (k.packet as EventPacket).ackId)).toEqual([1, 2])
    // The smallest id, but a later request than the two before the wrap: they went with it.
    s.answered(1)
    expect(s.kept.map((k) => (k.packet as EventPacket).ackId)).toEqual([2])
  })

  it('forgets up to the older of two kept requests that share an ack id after the wrap', () => {
    const s = new Ledger({ maxQueuedMessages: 5, maxQueuedBytes: 500 }, () => {})
    const request = (ackId: number) => s.keep((seq) => ({ ...event(seq), ackId }))
    // Id 5's first wait ended (a timeout) while the server had not acknowledged its request; the
    // ids went round and gave 5 again. Either answer proves the older one taken, not the later.
    request(5)
    request(6)
    request(5)
    s.answered(5)
    expect(s.kept.map((k) => (k.packet as EventPacket).seq)).toEqual([2, 3])
  })

  it('keeps only what a resumed session lacks after OPEN', () => {
    const s = new Ledger(limits, () => {})
    s.opened(open('A', false, 0), noRefusal)
    for (let i = 0; i < 3; i++) s.keep((seq) => event(seq))
    expect(s.opened(open('A', true, 2), noRefusal)).toBe(false)
    expect(s.kept.map((k) => k.text)).toEqual(['[5,3,"e",[],0]'])
  })

  it('renumbers kept packets into a new session when the old one is gone', () => {
    const s = new Ledger(limits, () => {})
    s.opened(open('A', false, 0), noRefusal)
    s.keep((seq) => event(seq, 'a'))
    s.keep((seq) => event(seq, 'b'))
    s.acked(1)
    s.receive(1, pace)
    expect(s.opened(open('B', false, 0), noRefusal)).toBe(true)
    expect(s.inSeq).toBe(0)
    expect(s.kept.map((k) => k.text)).toEqual(['[5,1,"b",[],0]'])
    expect(s.outSeq).toBe(1)
  })

  it("does not send what the OPEN's maxPayload shows too large, and says which it dropped", () => {
    const s = new Ledger(limits, () => {})
    s.keep((seq) => event(seq, 'a'))
    s.keep((seq) => event(seq, 'b', ['x'.repeat(100)]))
    s.keep((seq) => event(seq, 'c'))
    const refused: [string, unknown][] = []
    s.opened(open('A', false, 0, 50), (packet, error) => refused.push([(packet as EventPacket).name, error]))
    expect(refused).toMatchObject([['b', { code: ErrorCode.PAYLOAD_TOO_LARGE, details: { limit: 50 } }]])
    expect(s.kept.map((k) => k.text)).toEqual(['[5,1,"a",[],0]', '[5,2,"c",[],0]'])
    expect(s.outSeq).toBe(2)
  })

  it('refuses past maxQueuedMessages with PARLEY_QUEUE_FULL, and past maxPayload', () => {
    const s = new Ledger(limits, () => {})
    for (let i = 0; i < 3; i++) s.keep((seq) => event(seq))
    expect(() => s.keep((seq) => event(seq))).toThrow(expect.objectContaining({ code: ErrorCode.QUEUE_FULL }))
    expect(s.outSeq).toBe(3)
    const t = new Ledger({ maxQueuedMessages: 100, maxQueuedBytes: 100 }, () => {})
    expect(() => t.keep((seq) => event(seq, 'e', ['x'.repeat(100)]))).toThrow(
      expect.objectContaining({ code: ErrorCode.QUEUE_FULL }),
    )
    t.opened(open('A', false, 0), noRefusal)
    expect(() => t.keep((seq) => event(seq, 'e', ['x'.repeat(2000)]))).toThrow(
      expect.objectContaining({ code: ErrorCode.PAYLOAD_TOO_LARGE }),
    )
  })

  it('delivers in order, drops duplicates, reports gaps', () => {
    const s = new Ledger(limits, () => {})
    expect(s.receive(1, pace)).toBe(DELIVER)
    expect(s.receive(1, pace)).toBe(DUPLICATE)
    expect(s.receive(3, pace)).toBe(GAP)
    expect(s.receive(2, pace)).toBe(DELIVER)
    expect(s.inSeq).toBe(2)
  })

  it("acknowledges within its transport's delay, or at once after its transport's count", () => {
    vi.useFakeTimers()
    const acks: number[] = []
    const s = new Ledger(limits, (n) => acks.push(n))
    s.receive(1, pace)
    s.receive(2, pace)
    vi.advanceTimersByTime(999)
    expect(acks).toEqual([])
    vi.advanceTimersByTime(1)
    expect(acks).toEqual([2])
    for (let i = 3; i < 35; i++) s.receive(i, pace)
    expect(acks).toEqual([2, 34])
  })

  it('takes the pace of the transport a packet came on: SSE waits longer, polling never sends for a count', () => {
    vi.useFakeTimers()
    const acks: number[] = []
    let now = { ackDelay: 5000, ackAfter: 256 }
    const s = new Ledger(limits, (n) => acks.push(n))
    for (let i = 1; i <= 255; i++) s.receive(i, now)
    vi.advanceTimersByTime(4999)
    expect(acks).toEqual([])
    s.receive(256, now)
    expect(acks).toEqual([256])
    now = { ackDelay: 1000, ackAfter: Number.POSITIVE_INFINITY }
    for (let i = 257; i <= 1256; i++) s.receive(i, now)
    expect(acks).toEqual([256])
    expect(s.takeOwed()).toBe(1256)
    vi.advanceTimersByTime(1000)
    expect(acks).toEqual([256])
  })

  it('counts UTF-8 bytes', () => {
    expect(utf8Length('aé€😀')).toBe(1 + 2 + 3 + 4)
  })
})

describe('boundedBody', () => {
  /** An answer whose body comes in `chunks`, as a fetch Response's does. */
  const answer = (...chunks: Uint8Array[]) => ({
    body: new ReadableStream<Uint8Array>({
      start(controller) {
        for (const chunk of chunks) controller.enqueue(chunk)
        controller.close()
      },
    }),
  })
  const bytes = new TextEncoder().encode('[5,1,"é",["€ 😀"]]\n[5,2,"a",[]]')

  it('reads a body in one chunk or cut anywhere, characters split across chunks included', async () => {
    expect(await boundedBody(answer(), 100)).toBe('')
    expect(await boundedBody(answer(bytes), 100)).toBe('[5,1,"é",["€ 😀"]]\n[5,2,"a",[]]')
    for (let cut = 1; cut < bytes.length; cut++) {
      const parts = [bytes.subarray(0, cut), bytes.subarray(cut, cut + 3), bytes.subarray(cut + 3)]
      expect(await boundedBody(answer(...parts), 100)).toBe('[5,1,"é",["€ 😀"]]\n[5,2,"a",[]]')
    }
  })

  it('refuses a body past maxPayload bytes, in its last chunk too', async () => {
    // Multi-byte text: fewer characters than bytes, and the bytes are what counts.
    const text = '[5,1,"é",["€ 😀"]]\n[5,2,"a",[]]'
    expect(await boundedBody(answer(bytes), bytes.length)).toBe(text)
    for (const parts of [[bytes], [bytes.subarray(0, 5), bytes.subarray(5)]])
      await expect(boundedBody(answer(...parts), bytes.length - 1)).rejects.toMatchObject({
        code: ErrorCode.PAYLOAD_TOO_LARGE,
        message: `answer over ${bytes.length - 1} bytes`,
      })
  })

  // A polling transport's answers share one decoder (one read at a time). The real server's answers
  // come whole; where a chunk ends, and an answer cut mid-character, only a stream made here can
  // choose.
  it('leaves a decoder shared with the next answer as new, after one cut mid-character too', async () => {
    const decoder = new TextDecoder()
    const text = '[5,1,"é",["€ 😀"]]'
    const whole = new TextEncoder().encode(text)
    // Split inside "€" (3 bytes from its start), then inside "😀": in two answers one after another.
    const euro = text.indexOf('€')
    const at = new TextEncoder().encode(text.slice(0, euro)).length + 1
    for (const cut of [at, whole.length - 3])
      expect(await boundedBody(answer(whole.subarray(0, cut), whole.subarray(cut)), 100, decoder)).toBe(text)
    // An answer whose last character lacks its last byte ("€" is E2 82 AC): that character is
    // U+FFFD, and its two bytes are not kept for the next answer, whose first byte would end it.
    const cutEuro = new TextEncoder().encode('a€').subarray(0, 3)
    expect(await boundedBody(answer(cutEuro.subarray(0, 2), cutEuro.subarray(2)), 100, decoder)).toBe(
      'a\uFFFD',
    )
    expect(await boundedBody(answer(Uint8Array.of(0xac, 0x62)), 100, decoder)).toBe('\uFFFDb')
    // The same in one chunk each, and an empty answer between.
    expect(await boundedBody(answer(cutEuro), 100, decoder)).toBe('a\uFFFD')
    expect(await boundedBody(answer(), 100, decoder)).toBe('')
    expect(await boundedBody(answer(Uint8Array.of(0xac, 0x62)), 100, decoder)).toBe('\uFFFDb')
    expect(await boundedBody(answer(whole), 100, decoder)).toBe(text)
  })
})

describe('Backoff', () => {
  it('doubles up to the cap, with full jitter by default', () => {
    const pace = (randomization: number) => ({
      reconnectionDelay: 500,
      reconnectionDelayMax: 4000,
      randomization,
    })
    const b = new Backoff(pace(0))
    expect([b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([500, 1000, 2000, 4000, 4000])
    // The jitter's random number, from the one source the backoff reads.
    const random = vi.spyOn(Math, 'random').mockReturnValue(0.5)
    expect(new Backoff(pace(1)).next()).toBe(250)
    random.mockReturnValue(0.999)
    const top = new Backoff(pace(1))
    for (let i = 0; i < 40; i++) expect(top.next()).toBeLessThanOrEqual(4000)
  })

  it('caps no lower than WAIT_FLOOR_MS, whatever a delay of 0 or a small max says', () => {
    for (const pace of [
      { reconnectionDelay: 0, reconnectionDelayMax: 10_000 },
      { reconnectionDelay: 500, reconnectionDelayMax: 0 },
      { reconnectionDelay: 1, reconnectionDelayMax: 1 },
    ]) {
      const b = new Backoff({ ...pace, randomization: 0 })
      expect([b.next(), b.next(), b.next()]).toEqual([WAIT_FLOOR_MS, WAIT_FLOOR_MS, WAIT_FLOOR_MS])
    }
  })

  it('waits at most what a timer can wait, with no max (a longer timer fires at once)', () => {
    const b = new Backoff({ reconnectionDelay: 500, reconnectionDelayMax: Infinity, randomization: 0 })
    const delays = Array.from({ length: 40 }, () => b.next())
    expect(delays[3]).toBe(4000)
    expect(Math.max(...delays)).toBe(MAX_TIMER_MS)
  })
})

describe('TransportMemory', () => {
  /** A storage over a Map the test can read and write too. */
  function mapStorage(): { map: Map<string, string>; storage: StorageLike } {
    const map = new Map<string, string>()
    const storage: StorageLike = {
      getItem: (k) => map.get(k) ?? null,
      setItem: (k, v) => void map.set(k, v),
      removeItem: (k) => void map.delete(k),
    }
    return { map, storage }
  }

  /** The time the memory reads (`Date.now()`), moved by the test. */
  let now = 1000
  beforeEach(() => {
    now = 1000
    vi.spyOn(Date, 'now').mockImplementation(() => now)
  })

  it('remembers per server and forgets after the TTL', () => {
    const { storage } = mapStorage()
    const m = new TransportMemory(storage, 'http://a')
    expect(m.recall()[0]).toBeUndefined()
    m.note('sse')
    expect(m.recall()[0]).toBe('sse')
    expect(new TransportMemory(storage, 'http://b').recall()[0]).toBeUndefined()
    now += MEMORY_TTL
    expect(m.recall()[0]).toBeUndefined()
  })

  it('survives a storage that throws', () => {
    const broken: StorageLike = {
      getItem: () => {
        throw new Error('no')
      },
      setItem: () => {
        throw new Error('no')
      },
      removeItem: () => {},
    }
    const m = new TransportMemory(broken, 'x')
    m.note('polling')
    m.note('sse', true)
    expect(m.recall()[0]).toBeUndefined()
    expect(m.recall()[1]).toEqual([])
  })

  it('keeps the streams that stalled until a transport opens them, or for MEMORY_TTL', () => {
    const { map, storage } = mapStorage()
    const m = new TransportMemory(storage, 'http://a')
    m.note('sse', true)
    expect(m.recall()).toEqual([undefined, ['sse']])
    m.note('polling')
    m.note('sse', true)
    expect(m.recall()).toEqual(['polling', ['sse']])
    m.note('sse')
    expect(m.recall()).toEqual(['sse', []])
    // What older clients wrote: a transport and a time; then stalled streams without a time.
    map.set('parley:transport:http://a', `polling|${now}`)
    expect(m.recall()).toEqual(['polling', []])
    map.set('parley:transport:http://a', `polling|${now}|sse`)
    expect(m.recall()).toEqual(['polling', []])
    // Names it does not know are left out.
    map.set('parley:transport:http://a', `polling|${now}|sse,carrier-pigeon|${now}`)
    expect(m.recall()[1]).toEqual(['sse'])
    now += MEMORY_TTL
    expect(m.recall()).toEqual([undefined, []])
  })

  it('lets a stall mark lapse on its own time, however often the transport opens', () => {
    const { storage } = mapStorage()
    const m = new TransportMemory(storage, 'http://a')
    m.note('polling')
    m.note('sse', true)
    m.note('sse', true)
    now += MEMORY_TTL / 2
    m.note('polling')
    expect(m.recall()[1]).toEqual(['sse'])
    now += MEMORY_TTL / 2
    m.note('polling')
    expect(m.recall()).toEqual(['polling', []])
  })

  it('marks a first stall for FIRST_STALL_TTL, and a second within the hour for MEMORY_TTL', () => {
    const { map, storage } = mapStorage()
    const m = new TransportMemory(storage, 'http://a')
    m.note('polling')
    m.note('sse', true)
    expect(m.recall()[1]).toEqual(['sse'])
    now += FIRST_STALL_TTL
    // A slow moment: it has passed, and the stream is tried again, polling opening meanwhile.
    expect(m.recall()[1]).toEqual([])
    m.note('polling')
    expect(m.recall()[1]).toEqual([])
    // It stalls again within the hour of the first: a proxy that buffers it, for the hour.
    now += MEMORY_TTL - FIRST_STALL_TTL - 1
    m.note('sse', true)
    now += MEMORY_TTL - 1
    expect(m.recall()[1]).toEqual(['sse'])
    now += 1
    expect(m.recall()[1]).toEqual([])
    // An hour after the last stall, the next is a first one again.
    m.note('sse', true)
    now += FIRST_STALL_TTL
    expect(m.recall()[1]).toEqual([])
    // A stream that worked starts over: its next stall is a first one (not a second, as it
    // would be after the one above).
    m.note('sse')
    m.note('sse', true)
    now += FIRST_STALL_TTL
    expect(m.recall()).toEqual(['sse', []])
    // What a client before this rule wrote (no fifth part) holds for the hour, as it did there.
    map.set('parley:transport:http://a', `polling|${now}|sse|${now}`)
    now += MEMORY_TTL - 1
    expect(m.recall()[1]).toEqual(['sse'])
  })
})

describe('Emitter', () => {
  class E extends Emitter<{ a: (n: number) => void }> {
    go(n: number) {
      return this.fire('a', [n])
    }
  }

  it('calls on and once listeners, and off removes them', () => {
    const e = new E()
    const seen: string[] = []
    const on = (n: number) => seen.push(`on${n}`)
    e.on('a', on)
    e.once('a', (n) => seen.push(`once${n}`))
    e.go(1)
    e.go(2)
    e.off('a', on)
    expect(e.go(3)).toBe(false)
    expect(seen).toEqual(['on1', 'once1', 'on2'])
  })

  it('removes the once registration after its call, not an on registration of the same function', () => {
    const e = new E()
    let calls = 0
    const both = () => void calls++
    e.on('a', both)
    e.once('a', both)
    e.go(1)
    e.go(2)
    e.go(3)
    expect(calls).toBe(4)
    expect(e.listenerCount('a')).toBe(1)
  })

  it('calls the listeners there were when the event fired, whatever a listener adds or removes', () => {
    const e = new E()
    const seen: string[] = []
    const second = () => seen.push('second')
    e.on('a', () => {
      seen.push('first')
      e.off('a', second)
      e.on('a', () => seen.push('added'))
    })
    e.on('a', second)
    e.go(1)
    expect(seen).toEqual(['first', 'second'])
    seen.length = 0
    e.go(2)
    expect(seen).toEqual(['first', 'added'])
    expect(e.listenerCount('a')).toBe(3)
  })
})

describe('resolveOptions', () => {
  it('fills in the defaults', () => {
    expect(resolveOptions()).toEqual(DEFAULTS)
    expect(resolveOptions({ transports: ['sse'], randomization: 0.5 })).toMatchObject({
      transports: ['sse'],
      randomization: 0.5,
      path: '/parley',
    })
  })

  it.each([
    ['connectTimeout', -1, 'a number >= 1'],
    ['connectTimeout', 0, 'a number >= 1'],
    ['ackTimeout', Number.NaN, 'a number >= 1'],
    ['ackTimeout', 0, 'a number >= 1'],
    ['maxQueuedMessages', 0, 'a whole number >= 1'],
    ['maxQueuedMessages', 1.5, 'a whole number >= 1'],
    ['maxQueuedBytes', 0, 'a whole number >= 1'],
    ['maxPendingAcks', -1, 'a whole number >= 1'],
    ['maxPendingAcks', 0.5, 'a whole number >= 1'],
    ['reconnectionAttempts', 2.5, 'a whole number >= 0'],
    ['reconnectionAttempts', -1, 'a whole number >= 0'],
    ['reconnectionDelay', -1, 'a number >= 0'],
    ['reconnectionDelayMax', '1s', 'a number >= 0'],
    ['upgradeDelay', Number.NaN, 'a number >= 0'],
    ['upgradeDelayMax', -1, 'a number >= 0'],
    ['maxQueuedBytes', '100', 'a whole number >= 1'],
    ['randomization', 1.5, 'a number from 0 to 1'],
    ['reconnection', 'yes', 'a boolean'],
    ['autoConnect', 1, 'a boolean'],
    ['withCredentials', 'include', 'a boolean'],
    ['transports', [], 'a list of websocket,sse,polling'],
    ['transports', ['websocket', 'carrier pigeon'], 'a list of websocket,sse,polling'],
    ['transports', 'websocket', 'a list of websocket,sse,polling'],
    ['path', 'parley', 'a path like /parley'],
    ['WebSocket', 42, 'a function'],
    ['fetch', 'x', 'a function'],
    ['storage', {}, 'like localStorage'],
    ['storage', null, 'like localStorage'],
    ['storage', { getItem: () => null, setItem: 1 }, 'like localStorage'],
  ])('refuses %s = %j with a TypeError that names it and says what it must be: %s', (key, value, allowed) => {
    expect(() => resolveOptions({ [key]: value } as ClientOptions)).toThrow(
      expect.objectContaining({
        name: 'TypeError',
        code: 'PARLEY_INVALID_ARGUMENT',
        message: `option ${key} must be ${allowed}`,
      }),
    )
  })

  it('takes whole counts from 1, timeouts from 1, delays from 0, and Infinity where each allows it', () => {
    const given = {
      maxQueuedMessages: Infinity,
      maxQueuedBytes: 1,
      maxPendingAcks: 1,
      reconnectionAttempts: 0,
      connectTimeout: 1.5,
      ackTimeout: Infinity,
      reconnectionDelay: 0,
      reconnectionDelayMax: 0.5,
      upgradeDelay: 0,
      randomization: 0,
    }
    expect(resolveOptions(given)).toMatchObject(given)
    expect(resolveOptions({ connectTimeout: Infinity, reconnectionAttempts: Infinity })).toMatchObject({
      connectTimeout: Infinity,
    })
  })

  it('takes a WebSocket, a fetch and a storage that have what the client calls, or none', () => {
    const options = {
      WebSocket: class {},
      fetch: async () => new Response(),
      storage: { getItem: () => null, setItem: () => {} } as unknown as StorageLike,
      auth: { token: 't' },
    }
    expect(resolveOptions(options)).toMatchObject(options)
    expect(() => resolveOptions({ WebSocket: undefined, fetch: undefined, storage: undefined })).not.toThrow()
  })

  it('keeps the default of an option given as undefined, as one left out', () => {
    // What `{ ackTimeout: config.ackTimeout }` gives when nothing is configured: the types allow
    // it, and the server reads its own options so.
    const given = Object.fromEntries(Object.keys(DEFAULTS).map((key) => [key, undefined]))
    expect(resolveOptions(given as ClientOptions)).toEqual(DEFAULTS)
    expect(() => resolveOptions({ acktimeout: undefined } as ClientOptions)).toThrow(
      expect.objectContaining({
        code: 'PARLEY_INVALID_ARGUMENT',
        message: expect.stringContaining('acktimeout'),
      }),
    )
  })
})

describe('baseUrl', () => {
  it.each([
    ['http://example.com', 'http://example.com/parley', ''],
    ['https://example.com:8443/', 'https://example.com:8443/parley', ''],
    ['ws://example.com/rt/', 'http://example.com/rt', ''],
    ['wss://ws.example.com/rt?room=lobby&x=1', 'https://ws.example.com/rt', '&room=lobby&x=1'],
    ['http://[::1]:3000/a//', 'http://[::1]:3000/a', ''],
  ])('reads %s as the mount point %s with the query %j', (url, base, query) => {
    expect(baseUrl(url, '/parley')).toEqual([base, query])
  })

  it.each(['ws://user:secret@example.com/parley', 'https://user@example.com', 'http://:secret@example.com'])(
    'refuses credentials in the URL (%s), which no transport would send, pointing to auth',
    (url) => {
      const coded = expect.objectContaining({
        name: 'TypeError',
        code: 'PARLEY_INVALID_ARGUMENT',
        message: 'no credentials in the URL: use the auth option',
      })
      expect(() => baseUrl(url, '/parley')).toThrow(coded)
      expect(() => connect(url, { autoConnect: false })).toThrow(coded)
    },
  )

  it('refuses a URL that sets the protocol’s own parameters, and no URL outside browsers', () => {
    const coded = expect.objectContaining({ name: 'TypeError', code: 'PARLEY_INVALID_ARGUMENT' })
    expect(() => baseUrl('http://example.com/parley?sid=x', '/parley')).toThrow(coded)
    expect(() => baseUrl(undefined, '/parley')).toThrow(coded)
  })

  // Each would fail every try of every transport, then retry them forever (with `ws`, 'not a url'
  // threw Node's own ERR_INVALID_URL).
  it.each([
    'localhost:3000',
    'not a url',
    '',
    'http://',
    'http://example.com:99999/',
    'ftp://example.com/parley',
    'file:///parley',
  ])('refuses %j, which no transport can reach, with a coded TypeError', (url) => {
    expect(() => baseUrl(url, '/parley')).toThrow(
      expect.objectContaining({
        name: 'TypeError',
        code: 'PARLEY_INVALID_ARGUMENT',
        message: `bad server URL: ${url}`,
      }),
    )
    expect(() => connect(url)).toThrow(expect.objectContaining({ code: 'PARLEY_INVALID_ARGUMENT' }))
  })

  it('refuses a symbol for a URL with its own coded TypeError, naming it', () => {
    expect(() => connect(Symbol('url') as never)).toThrow(
      expect.objectContaining({
        name: 'TypeError',
        code: 'PARLEY_INVALID_ARGUMENT',
        message: 'bad server URL: Symbol(url)',
      }),
    )
  })
})

describe("the client's copies of protocol constants", () => {
  it("are the protocol's packet types, every one of them", () => {
    expect({ ...clientPacketType }).toEqual({ ...PacketType })
  })

  it("are the protocol's wire limits, every one of them", () => {
    expect({ ...clientWireLimits }).toEqual({ ...WireLimits })
  })

  it("are the protocol's close codes, for the ones a client sends", () => {
    for (const [name, code] of Object.entries(clientCloseCode)) {
      expect(code).toBe(WsCloseCode[name as keyof typeof WsCloseCode])
    }
  })

  it("name every transport of the protocol's, in its order: the registry's, the best first", () => {
    // The connection climbs by the protocol's list (BEST_FIRST in fallback.ts).
    expect(Object.keys(REGISTRY)).toEqual([...TRANSPORTS])
  })
})
