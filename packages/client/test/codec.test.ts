import * as protocol from '@parley/protocol'
import { ErrorCode, type Packet, PacketType } from '@parley/protocol'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { docFileEvent, malformed, wireFixtures } from '../../protocol/test/fixtures.js'
import { decodeFrame, decodeText, encode, encodeFrame, encodeText } from '../src/codec.js'

/** The protocol's default maxPayload, the limit `decodeText` takes when given none. */
const LIMIT = protocol.WireLimits.defaultMaxPayload

// The client's lean codec must write what @parley/protocol writes, read what it reads, and refuse
// what it refuses: the server decodes with the protocol, and the protocol is the specification.

const fromServer = (p: Packet) => p.type !== PacketType.HELLO
const fromClient = (p: Packet) =>
  [
    PacketType.HELLO,
    PacketType.CLOSE,
    PacketType.PONG,
    PacketType.ACK,
    PacketType.EVENT,
    PacketType.REPLY,
  ].includes(p.type as never)

type Result = { ok: boolean; error?: { code: string } }
function neverThrows(run: () => Result): Result {
  let result: Result | undefined
  expect(() => {
    result = run()
  }).not.toThrow()
  if (!result!.ok) expect(result!.error?.code).toMatch(/^PARLEY_[A-Z_]+$/)
  return result!
}

/**
 * Both decoders on one input: the client accepts exactly what the protocol accepts, and refuses
 * the rest with the same code (both walk the protocol's PACKET_SHAPES). HELLO aside: the client
 * refuses every HELLO, as an unknown packet type.
 */
function agree(input: string | Uint8Array): void {
  const mine = neverThrows(() => (typeof input === 'string' ? decodeText(input) : decodeFrame(input, LIMIT)))
  const theirs = typeof input === 'string' ? protocol.decodeText(input) : protocol.decodeFrame(input)
  if (theirs.ok && theirs.packet.type === PacketType.HELLO) {
    expect(mine.ok).toBe(false)
    return
  }
  expect(mine).toEqual(theirs.ok ? theirs : expect.objectContaining({ ok: false, error: expect.anything() }))
  const text = typeof input === 'string' ? input : new TextDecoder().decode(input.subarray(4, 16))
  const hello = /^\s*\[\s*8(?!\d)/.test(text)
  if (!theirs.ok && !hello) expect([input, mine.error?.code]).toEqual([input, theirs.error.code])
}

describe('client codec, against the protocol fixtures', () => {
  it.each(wireFixtures.filter(([, p]) => fromServer(p)))('decodes %s', (text, packet) => {
    expect(decodeText(text)).toEqual({ ok: true, packet })
  })

  it.each(wireFixtures.filter(([, p]) => fromClient(p)))('encodes %s byte for byte', (text, packet) => {
    expect(encodeText(packet)).toBe(text)
    expect(encodeFrame(packet)).toBe(text)
  })

  it('refuses a HELLO: only a server receives one', () => {
    expect(decodeText('[8,{"auth":{"token":"abc"}}]').ok).toBe(false)
  })

  it.each(malformed)('refuses %s, as the protocol does (%s)', (input) => {
    const result = neverThrows(() => decodeText(input))
    expect(result.ok).toBe(false)
  })

  it.each(malformed.filter(([input]) => !input.startsWith('[8,')))(
    'refuses %s with code %s',
    (input, code) => {
      // One code differs, both refusals: an unterminated nesting is invalid JSON before it is too
      // deep (the client does not scan text that JSON.parse refused).
      const differs: Record<string, string> = {
        ['['.repeat(200_000)]: 'PARLEY_INVALID_JSON',
      }
      const expected = differs[input] ?? code
      expect(decodeText(input)).toMatchObject({ ok: false, error: { code: expected } })
    },
  )

  it('finds nesting and refused keys in short text too (short packets skip the full scan)', () => {
    // 67 brackets deep is the shallowest too-deep value, and its text is the shortest one.
    const nested = (levels: number) => '['.repeat(levels) + ']'.repeat(levels)
    expect(decodeText(nested(67))).toMatchObject({ error: { code: 'PARLEY_TOO_DEEP' } })
    expect(decodeText(nested(66))).toMatchObject({ error: { code: 'PARLEY_UNKNOWN_PACKET_TYPE' } })
    for (const text of [nested(67), nested(66)]) {
      expect(decodeText(text).ok).toBe(protocol.decodeText(text).ok)
    }
    for (const key of ['constructor', 'constr\\u0075ctor', '\\u005F\\u005Fproto__']) {
      expect(decodeText(`[5,1,"a",[{"${key}":1}],0]`)).toMatchObject({
        error: { code: 'PARLEY_FORBIDDEN_KEY' },
      })
    }
  })

  it('refuses oversized input before parsing it', () => {
    expect(decodeText('[2]'.padEnd(2000), 1000)).toMatchObject({
      error: { code: 'PARLEY_PAYLOAD_TOO_LARGE' },
    })
    expect(decodeFrame(new Uint8Array(2000), 1000)).toMatchObject({
      error: { code: 'PARLEY_PAYLOAD_TOO_LARGE' },
    })
  })

  // maxPayload counts UTF-8 bytes: a packet of multi-byte text is taken up to the limit's bytes
  // and refused one byte past it, as the protocol's decoder does, wherever its length falls
  // against the limit (more than a third of it in units: the bytes are counted).
  it.each([
    ['emoji', '😀'],
    ['CJK', '界'],
    ['accented', 'é'],
    ['a lone surrogate', '\ud800'],
  ])('takes %s text up to maxPayload bytes, and refuses one byte more', (_, unit) => {
    for (const limit of [256, 1000, 4096]) {
      // `[5,1,"e",["` + text + `"],0]`: 16 bytes of ASCII around it.
      const fill = unit.repeat(Math.floor((limit - 16) / new TextEncoder().encode(unit).length))
      for (const pad of [0, 1, 2, 3, 4]) {
        const text = `[5,1,"e",["${fill}${'a'.repeat(pad)}"],0]`
        const bytes = new TextEncoder().encode(text).length
        const mine = decodeText(text, limit)
        const theirs = protocol.decodeText(text, { maxPayload: limit })
        expect([mine.ok, theirs.ok], `${bytes} bytes, limit ${limit}`).toEqual([
          bytes <= limit,
          bytes <= limit,
        ])
        if (!mine.ok) expect(mine.error).toMatchObject({ code: 'PARLEY_PAYLOAD_TOO_LARGE' })
      }
    }
  })

  it('refuses a message that is neither text nor bytes (a Blob) as a broken stream', () => {
    for (const data of [new Blob([new Uint8Array([0, 0, 0, 3])]), 5, null, {}]) {
      const result = decodeFrame(data, LIMIT)
      expect(result).toMatchObject({ ok: false, error: { code: ErrorCode.INVALID_BINARY } })
      expect(result).not.toHaveProperty('seq')
    }
  })

  it('reads the binary frame of the protocol doc', () => {
    const file = docFileEvent
    const frame = protocol.encodeFrame(file) as Uint8Array
    expect(decodeFrame(frame, LIMIT)).toEqual({ ok: true, packet: file })
    expect(encodeFrame(file)).toEqual(frame)
    expect(encode(file).text).toBe(protocol.encodeText(file))
  })

  it('throws PARLEY_UNSERIALIZABLE for what JSON cannot carry, as the protocol does', () => {
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    for (const arg of [cyclic, 10n]) {
      expect(() =>
        encodeText({ type: PacketType.EVENT, seq: 1, name: 'x', args: [arg as never], ackId: 0 }),
      ).toThrow(expect.objectContaining({ code: 'PARLEY_UNSERIALIZABLE' }))
    }
  })

  it('does not touch the caller’s arguments', () => {
    const args = [{ body: new Uint8Array([1]), list: [new ArrayBuffer(2)] }]
    encodeText({ type: PacketType.EVENT, seq: 1, name: 'x', args, ackId: 0 })
    expect(args[0]!.body).toBeInstanceOf(Uint8Array)
    expect(args[0]!.list[0]).toBeInstanceOf(ArrayBuffer)
  })

  it('refuses to encode a payload with a key the server refuses', () => {
    for (const key of ['constructor', '__proto__']) {
      const payload = JSON.parse(`{"${key}":1}`) as Record<string, number>
      expect(() =>
        encodeText({ type: PacketType.EVENT, seq: 1, name: 'x', args: [payload], ackId: 0 }),
      ).toThrow(expect.objectContaining({ code: ErrorCode.FORBIDDEN_KEY }))
    }
  })

  it('checks what a toJSON gives as it checks any other value', () => {
    const event = (arg: unknown) => ({
      type: PacketType.EVENT,
      seq: 1,
      name: 'x',
      args: [arg as never],
      ackId: 0,
    })
    const deep = (levels: number): unknown => (levels === 0 ? 1 : [deep(levels - 1)])
    for (const [made, code] of [
      [{ constructor: 1 }, ErrorCode.FORBIDDEN_KEY],
      [JSON.parse('{"a":{"__proto__":1}}'), ErrorCode.FORBIDDEN_KEY],
      [deep(100), ErrorCode.UNSERIALIZABLE],
    ] as const) {
      expect(() => encodeText(event({ toJSON: () => made }))).toThrow(expect.objectContaining({ code }))
    }
    // Within the limits, the text is JSON.stringify's, as the protocol writes it.
    const fine = event({ at: new Date(0), n: { toJSON: () => deep(protocol.WireLimits.maxDepth - 1) } })
    expect(encodeText(fine as Packet)).toBe(protocol.encodeText(fine as Packet))
  })
})

describe('the number of a refused packet', () => {
  it.each([
    ['a reserved event name', '[5,7,"connect",[],0]', 7, ErrorCode.RESERVED_EVENT_NAME],
    ['a name too long', `[5,8,"${'x'.repeat(300)}",[1],0]`, 8, ErrorCode.INVALID_EVENT_NAME],
    ['a forbidden key', '[5,9,"e",[{"constructor":1}],0]', 9, ErrorCode.FORBIDDEN_KEY],
    ['a bad binary list', '[5,3,"e",[null],0,[[[0],0,"!"]]]', 3, ErrorCode.INVALID_BINARY],
    ['a bad REPLY ack id', '[6,4,0,[]]', 4, ErrorCode.INVALID_ACK_ID],
    ['an unnumbered event', '[5,0,"connect",[],0]', 0, ErrorCode.RESERVED_EVENT_NAME],
    ['a control packet of a bad shape', '[4,"x"]', 0, ErrorCode.INVALID_SEQ],
    [
      'a packet type that cannot be compared',
      '[{"valueOf":1,"toString":2}]',
      0,
      ErrorCode.UNKNOWN_PACKET_TYPE,
    ],
  ])('is read from %s', (_, text, seq, code) => {
    const result = decodeText(text)
    expect(result).toMatchObject({ ok: false, seq, error: { code, details: { seq } } })
  })

  it('is read from the start of a packet past maxPayload, text or binary frame', () => {
    const text = `[5,12,"e",["${'a'.repeat(200)}"],0]`
    expect(decodeText(text, 100)).toMatchObject({ ok: false, seq: 12 })
    const frame = encodeFrame({
      type: PacketType.EVENT,
      seq: 13,
      name: 'e',
      args: [new Uint8Array(300)],
      ackId: 0,
    })
    expect(decodeFrame(frame, 100)).toMatchObject({ ok: false, seq: 13 })
  })

  it('keeps the error as it was, with no cause where there was none', () => {
    const refused = decodeText('[5,7,"connect",[],0]')
    expect(refused.ok).toBe(false)
    if (!refused.ok) expect(Object.hasOwn(refused.error, 'cause')).toBe(false)
    const broken = decodeFrame(new Uint8Array([0, 0, 0, 2, 0xff, 0xfe]), LIMIT)
    expect(broken.ok).toBe(false)
    if (!broken.ok) expect(broken.error.cause).toBeInstanceOf(Error)
  })

  it('is not guessed when the text is not a packet at all (a broken stream)', () => {
    expect(decodeText('[5,3,"e",[1')).not.toHaveProperty('seq')
    expect(decodeText('garbage')).not.toHaveProperty('seq')
  })
})

// Server packets to mutate: what a client receives, binary included.
const valid: Packet[] = [
  ...wireFixtures.map(([, p]) => p).filter(fromServer),
  {
    type: PacketType.EVENT,
    seq: 12,
    name: 'chat',
    args: [{ text: 'hi', list: [1, 2, { x: null }] }, new Uint8Array([1, 2])],
    ackId: 3,
  },
  { type: PacketType.REPLY, seq: 4, ackId: 3, args: [{ ok: true, blob: new Uint8Array([9, 8, 7]).buffer }] },
]

const mutatedText = fc
  .tuple(
    fc.constantFrom(...valid.map(protocol.encodeText)),
    fc.nat(),
    fc.string({ maxLength: 8 }),
    fc.nat({ max: 8 }),
  )
  .map(([text, at, insert, cut]) => {
    const i = at % (text.length + 1)
    return text.slice(0, i) + insert + text.slice(i + cut)
  })

const mutatedFrame = fc
  .tuple(
    fc.constantFrom(...valid.map((p) => protocol.encodeFrame(p)).filter((f) => f instanceof Uint8Array)),
    fc.nat(),
    fc.nat({ max: 255 }),
    fc.nat({ max: 16 }),
  )
  .map(([frame, at, byte, cut]) => {
    const copy = Array.from(frame as Uint8Array)
    copy[at % copy.length] = byte
    return new Uint8Array(copy.slice(0, copy.length - (cut % copy.length)))
  })

// Thousands of runs each: seconds alone, many more on a loaded machine, so no 20 s bound here.
describe('client decoder under fuzzing: never throws, agrees with the protocol', { timeout: 120_000 }, () => {
  it('on random strings and JSON values', () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), agree), { numRuns: 2000 })
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (v) => agree(JSON.stringify(v) ?? 'null')),
      { numRuns: 2000 },
    )
  })

  it('on random arrays that start with a packet type', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -1, max: 10 }),
        fc.array(fc.jsonValue({ maxDepth: 4 }), { maxLength: 7 }),
        (type, rest) => agree(JSON.stringify([type, ...rest])),
      ),
      { numRuns: 5000 },
    )
  })

  it('on mutated valid packets and frames', () => {
    fc.assert(fc.property(mutatedText, agree), { numRuns: 5000 })
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), agree), { numRuns: 2000 })
    fc.assert(fc.property(mutatedFrame, agree), { numRuns: 5000 })
  })
})

describe('client encoder: byte for byte what the protocol writes', () => {
  it('for any arguments with binary leaves, on both forms', () => {
    // Keys the client refuses to send (and the protocol does not check) are tested above.
    const allowed = (key: string) => !protocol.isForbiddenKey(key)
    const json = fc
      .jsonValue({ maxDepth: 2 })
      .filter((v) => !/"(__proto__|constructor)":/.test(JSON.stringify(v)))
    const leaf = fc.oneof(json, fc.uint8Array({ maxLength: 16 }))
    const args = fc.array(
      fc.oneof(
        leaf,
        fc.array(leaf, { maxLength: 3 }),
        fc.dictionary(fc.string({ maxLength: 5 }).filter(allowed), leaf),
      ),
      { maxLength: 4 },
    )
    fc.assert(
      fc.property(args, fc.nat(), fc.nat(), fc.boolean(), (a, seq, ackId, reply) => {
        const packet = (
          reply
            ? { type: PacketType.REPLY, seq, ackId, args: a }
            : { type: PacketType.EVENT, seq, name: 'e', args: a, ackId }
        ) as Packet
        expect(encodeText(packet)).toBe(protocol.encodeText(packet))
        expect(encodeFrame(packet)).toEqual(protocol.encodeFrame(packet))
      }),
      { numRuns: 1000 },
    )
  })
})

describe('the encoders and the decoders agree on depth', () => {
  /** `levels` arrays around `leaf`, as an application would nest its payload. */
  const nest = (levels: number, leaf: unknown): unknown => (levels === 0 ? leaf : [nest(levels - 1, leaf)])
  const packet = (arg: unknown) =>
    ({ type: PacketType.EVENT, seq: 1, name: 'deep', args: [arg], ackId: 0 }) as Packet
  const encoders = [protocol.encodeText, protocol.encodeFrame, encodeText, encodeFrame]

  it.each([
    ['a number', 1],
    ['binary', new Uint8Array([1, 2, 3])],
  ])(
    'an argument nested to the limit with %s at the bottom travels; one level more is refused by every encoder',
    (_, leaf) => {
      const deepest = packet(nest(protocol.WireLimits.maxDepth, leaf))
      for (const encode of encoders) {
        const encoded = encode(deepest)
        const theirs =
          typeof encoded === 'string' ? protocol.decodeText(encoded) : protocol.decodeFrame(encoded)
        const mine = typeof encoded === 'string' ? decodeText(encoded) : decodeFrame(encoded, LIMIT)
        expect(theirs).toEqual({ ok: true, packet: deepest })
        expect(mine).toEqual({ ok: true, packet: deepest })
      }
      const tooDeep = packet(nest(protocol.WireLimits.maxDepth + 1, leaf))
      for (const encode of encoders) {
        expect(() => encode(tooDeep)).toThrow(expect.objectContaining({ code: ErrorCode.UNSERIALIZABLE }))
      }
    },
  )
})
