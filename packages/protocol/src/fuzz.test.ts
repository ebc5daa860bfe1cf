import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decodeBatch, decodeFrame, decodeText } from './decode.js'
import { encodeFrame, encodeText, prepareEvent } from './encode.js'
import { type Packet, PacketType, type WireValue } from './packets.js'

// The decoder faces the open internet: whatever it is fed, it must answer, never throw.
function neverThrows(run: () => { ok: boolean; error?: { code: string } }) {
  let result: { ok: boolean; error?: { code: string } } | undefined
  expect(() => {
    result = run()
  }).not.toThrow()
  if (result && !result.ok) expect(result.error?.code).toMatch(/^PARLEY_[A-Z_]+$/)
}

const valid: Packet[] = [
  {
    type: PacketType.EVENT,
    seq: 12,
    name: 'chat',
    args: [{ text: 'hi', list: [1, 2, { x: null }] }, new Uint8Array([1, 2])],
    ackId: 3,
  },
  { type: PacketType.REPLY, seq: 4, ackId: 3, args: [{ ok: true, blob: new Uint8Array([9, 8, 7]).buffer }] },
  { type: PacketType.HELLO, auth: { token: 't' }, sid: 'abcDEF_-123', ack: 2 },
  { type: PacketType.CLOSE, reason: 'ping timeout', message: 'gone', retryAfter: 5 },
]

/** Applies a random edit to a string: the mutations a fuzzer would make. */
const mutatedText = fc
  .tuple(fc.constantFrom(...valid.map(encodeText)), fc.nat(), fc.string({ maxLength: 8 }), fc.nat({ max: 8 }))
  .map(([text, at, insert, cut]) => {
    const i = at % (text.length + 1)
    return text.slice(0, i) + insert + text.slice(i + cut)
  })

const mutatedFrame = fc
  .tuple(
    fc.constantFrom(...valid.map((p) => encodeFrame(p)).filter((f) => f instanceof Uint8Array)),
    fc.nat(),
    fc.nat({ max: 255 }),
    fc.nat({ max: 16 }),
  )
  .map(([frame, at, byte, cut]) => {
    const copy = Array.from(frame as Uint8Array)
    const i = at % copy.length
    copy[i] = byte
    return new Uint8Array(copy.slice(0, copy.length - (cut % copy.length)))
  })

describe('decoder under fuzzing', () => {
  it('never throws on random strings', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (s) => neverThrows(() => decodeText(s))),
      { numRuns: 3000 },
    )
  })

  it('never throws on random JSON values', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (v) =>
        neverThrows(() => decodeText(JSON.stringify(v) ?? 'null')),
      ),
      { numRuns: 3000 },
    )
  })

  it('never throws on random arrays that start with a packet type', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -1, max: 10 }),
        fc.array(fc.jsonValue({ maxDepth: 4 }), { maxLength: 7 }),
        (type, rest) => neverThrows(() => decodeText(JSON.stringify([type, ...rest]))),
      ),
      { numRuns: 5000 },
    )
  })

  it('never throws on mutated valid packets', () => {
    fc.assert(
      fc.property(mutatedText, (s) => neverThrows(() => decodeText(s))),
      { numRuns: 5000 },
    )
    fc.assert(
      fc.property(mutatedText, (s) => neverThrows(() => decodeBatch(`${s}\n[2]`))),
      { numRuns: 1000 },
    )
  })

  it('never throws on random and mutated binary frames', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => neverThrows(() => decodeFrame(b))),
      { numRuns: 3000 },
    )
    fc.assert(
      fc.property(mutatedFrame, (b) => neverThrows(() => decodeFrame(b))),
      { numRuns: 5000 },
    )
  })

  it('round-trips any JSON arguments with binary leaves on both forms', () => {
    const leaf = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.uint8Array({ maxLength: 16 }))
    const args = fc.array(
      fc.oneof(leaf, fc.array(leaf, { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 5 }), leaf)),
      {
        maxLength: 4,
      },
    )
    fc.assert(
      fc.property(args, fc.string({ minLength: 1, maxLength: 10 }), (a, name) => {
        fc.pre(!['connect', 'disconnect', 'error', 'transport'].includes(name))
        // Keys that the decoder refuses on purpose are not round-trip material.
        fc.pre(
          !/__proto__|constructor|connect_error|disconnecting|reconnect|newListener|removeListener/.test(
            JSON.stringify(Object.keys(a)) + name,
          ),
        )
        const packet = { type: PacketType.EVENT, seq: 1, name, args: a, ackId: 0 } as Packet
        for (const wire of [encodeText(packet), encodeFrame(packet)]) {
          const result = typeof wire === 'string' ? decodeText(wire) : decodeFrame(wire)
          if (!result.ok && result.error.code === 'PARLEY_FORBIDDEN_KEY') continue
          expect(result.ok && normalise(result.packet)).toEqual(normalise(packet))
        }
      }),
      { numRuns: 1000 },
    )
  })
})

/** JSON's view of a packet (-0 becomes 0, undefined keys vanish), with bytes as arrays. */
function normalise(packet: Packet): unknown {
  return JSON.parse(JSON.stringify(packet, (_k, v) => (v instanceof Uint8Array ? { bytes: [...v] } : v)))
}

describe('prepared events (broadcast encode-once)', () => {
  it('splice seq and ackId into exactly what encodeText gives', () => {
    const leaf = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.uint8Array({ maxLength: 8 }))
    fc.assert(
      fc.property(
        fc.array(fc.oneof(leaf, fc.array(leaf, { maxLength: 3 })), { maxLength: 4 }),
        fc.nat(),
        fc.nat(),
        (args, seq, ackId) => {
          const prepared = prepareEvent('news', args as WireValue[])
          const packet = { type: PacketType.EVENT, seq, name: 'news', args, ackId } as Packet
          expect(prepared.text(seq, ackId)).toBe(encodeText(packet))
          expect(prepared.textLength(seq, ackId)).toBe(encodeText(packet).length)
          expect(prepared.byteLength(seq)).toBe(new TextEncoder().encode(prepared.text(seq, 0)).length)
          expect(prepared.byteLength(seq, ackId)).toBe(new TextEncoder().encode(encodeText(packet)).length)
          expect(prepared.frame(seq, ackId)).toEqual(encodeFrame(packet))
          expect(prepared.binary).toBe(typeof encodeFrame(packet) !== 'string')
          // The two-part form of a copy with no reply is the same text, or absent with binary.
          const split = prepared.split(seq)
          if (prepared.binary) expect(split).toBeUndefined()
          else expect(split!.head + new TextDecoder().decode(split!.tail)).toBe(prepared.text(seq, 0))
        },
      ),
      { numRuns: 500 },
    )
  })

  it('knows the length of every copy, up to the largest sequence number', () => {
    const prepared = prepareEvent('news', [{ text: 'héllo' }])
    for (const seq of [0, 9, 10, 99, 100, 123456789, Number.MAX_SAFE_INTEGER]) {
      expect(prepared.textLength(seq, seq)).toBe(prepared.text(seq, seq).length)
      expect(prepared.byteLength(seq)).toBe(new TextEncoder().encode(prepared.text(seq, 0)).length)
      expect(prepared.byteLength(seq, seq)).toBe(new TextEncoder().encode(prepared.text(seq, seq)).length)
    }
  })

  it('gives each session its own frame, sharing nothing it could change', () => {
    const prepared = prepareEvent('file', [{ body: new Uint8Array([1, 2, 3]) }])
    const one = prepared.frame(1, 0) as Uint8Array
    const two = prepared.frame(12345, 7) as Uint8Array
    one.fill(0)
    const packet = (seq: number, ackId: number) =>
      ({
        type: PacketType.EVENT,
        seq,
        name: 'file',
        args: [{ body: new Uint8Array([1, 2, 3]) }],
        ackId,
      }) as Packet
    expect(two).toEqual(encodeFrame(packet(12345, 7)))
    expect(prepared.frame(1, 0)).toEqual(encodeFrame(packet(1, 0)))
  })
})
