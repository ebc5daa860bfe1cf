import { describe, expect, it } from 'vitest'
import { wireFixtures } from '../test/fixtures.js'
import { decodeText } from './decode.js'
import { ErrorCode } from './errors.js'
import { PacketType } from './packets.js'
import {
  ARGS,
  arityCode,
  BINS,
  type CheckedFields,
  HELLO_FIELDS,
  isWireCode,
  OPEN_FIELDS,
  PACKET_BUILDERS,
  PACKET_SHAPES,
} from './shapes.js'

const objectShaped: number[] = [PacketType.OPEN, PacketType.HELLO]
const arrayShaped = Object.values(PacketType).filter((type) => !objectShaped.includes(type))

describe('the table of packet shapes', () => {
  it('covers every packet type: the array-shaped ones in PACKET_SHAPES, OPEN and HELLO by their fields', () => {
    expect(Object.keys(PACKET_SHAPES).map(Number).sort()).toEqual([...arrayShaped].sort())
    expect(Object.keys(PACKET_BUILDERS).map(Number).sort()).toEqual([...arrayShaped].sort())
    for (const type of objectShaped) expect(PACKET_SHAPES[type]).toBeUndefined()
    expect(OPEN_FIELDS.map(([name]) => name)).toEqual([
      'sid',
      'id',
      'pingInterval',
      'pingTimeout',
      'maxPayload',
      'transports',
      'recovered',
      'ack',
    ])
    expect(HELLO_FIELDS.map(([name]) => name)).toEqual(['auth', 'sid', 'ack', 'closeAck'])
  })

  it('names every field of every packet of the protocol fixtures, in wire order', () => {
    for (const [text, packet] of wireFixtures) {
      const shape = PACKET_SHAPES[packet.type]
      const fields = shape ?? (packet.type === PacketType.OPEN ? OPEN_FIELDS : HELLO_FIELDS)
      const { type: _, ...members } = packet
      const names = fields.map(([name]) => name).filter((name) => name in members)
      expect(Object.keys(members)).toEqual(names)
      if (shape) {
        const wire = JSON.parse(text) as unknown[]
        expect(wire.slice(1)).toEqual(names.map((name) => members[name as keyof typeof members]))
      }
    }
  })

  it('lets only the last field be optional: CLOSE’s retryAfter, EVENT’s and REPLY’s bins', () => {
    for (const [type, shape] of Object.entries(PACKET_SHAPES)) {
      const optional = shape.filter((field) => field[3]).map(([name]) => name)
      expect([type, optional]).toEqual([
        type,
        Number(type) === PacketType.CLOSE
          ? ['retryAfter']
          : Number(type) === PacketType.EVENT || Number(type) === PacketType.REPLY
            ? ['bins']
            : [],
      ])
      if (optional.length > 0) expect(shape[shape.length - 1]![3]).toBe(true)
      expect(shape.includes(BINS)).toBe(shape.includes(ARGS))
    }
  })

  it('has one builder per shape that puts each wire field in the member of its name', () => {
    for (const [type, shape] of Object.entries(PACKET_SHAPES)) {
      const build = PACKET_BUILDERS[Number(type)]!
      const required = shape.filter((field) => !field[3])
      // Every length the shape allows: required fields only, and with the optional one.
      for (const fields of [required, shape.filter((field) => field !== BINS)]) {
        const wire = [Number(type), ...fields.map((_, i) => `value ${i}`)]
        const expected = Object.fromEntries([
          ['type', Number(type)],
          ...fields.map(([name], i) => [name, `value ${i}`]),
        ])
        expect(build(wire as unknown as CheckedFields)).toStrictEqual(expected)
      }
    }
  })

  it('refuses a packet of the wrong length as INVALID_PACKET, an ACK as INVALID_SEQ', () => {
    expect(arityCode(PacketType.ACK)).toBe(ErrorCode.INVALID_SEQ)
    for (const type of arrayShaped) {
      const shape = PACKET_SHAPES[type]!
      const tooLong = JSON.stringify([type, ...shape.map(() => 0), 0])
      expect(decodeText(tooLong)).toMatchObject({ ok: false, error: { code: arityCode(type) } })
      if (type !== PacketType.ACK) expect(arityCode(type)).toBe(ErrorCode.INVALID_PACKET)
    }
  })

  it("takes an ERROR's code in the one form of codes on the wire, which every code of Parley's has", () => {
    for (const code of Object.values(ErrorCode)) expect(isWireCode(code), code).toBe(true)
    // An application's own, as the server sends it, up to 64 characters.
    for (const code of ['AUTH_EXPIRED', 'E42', '_', 'C'.repeat(64)]) {
      expect(isWireCode(code), code).toBe(true)
      expect(decodeText(JSON.stringify([PacketType.ERROR, 1, 1, code, 'm']))).toMatchObject({
        ok: true,
        packet: { type: PacketType.ERROR, code },
      })
    }
    for (const code of [
      '',
      'rate_limited',
      'AccessDenied',
      'APP-FAILED',
      'C'.repeat(65),
      42,
      null,
      undefined,
    ])
      expect(isWireCode(code), String(code)).toBe(false)
  })
})
