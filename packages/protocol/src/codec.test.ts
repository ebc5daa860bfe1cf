import { describe, expect, it } from 'vitest'
import { docFileEvent, wireFixtures as fixtures } from '../test/fixtures.js'
import { decodeBatch, decodeFrame, decodeLines, decodeText } from './decode.js'
import { encodeFrame, encodeText, encodeTextTelling } from './encode.js'
import { type Packet, PacketType } from './packets.js'

const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
const fromHex = (text: string) => new Uint8Array(text.match(/../g)!.map((h) => Number.parseInt(h, 16)))

function decoded(text: string): Packet {
  const result = decodeText(text)
  if (!result.ok) throw result.error
  return result.packet
}

describe('text packets', () => {
  it.each(fixtures)('decodes %s', (text, packet) => {
    expect(decoded(text)).toEqual(packet)
  })

  it.each(fixtures)('encodes %s byte for byte', (text, packet) => {
    expect(encodeText(packet)).toBe(text)
    // Without binary, a WebSocket frame is the same text.
    expect(encodeFrame(packet)).toBe(text)
    expect(encodeTextTelling(packet)).toEqual({ text, binary: false })
  })
})

describe('binary payloads', () => {
  const file = docFileEvent

  it('travels as base64 on text transports, as in the protocol doc', () => {
    expect(encodeText(file)).toBe('[5,9,"file",[{"name":"a.bin","body":null}],0,[[[0,"body"],0,"AQID"]]]')
    expect(encodeTextTelling(file)).toEqual({ text: encodeText(file), binary: true })
    expect(decoded('[5,9,"file",[{"name":"a.bin","body":null}],0,[[[0,"body"],0,"AQID"]]]')).toEqual(file)
  })

  it('travels as one binary WebSocket frame, as in the protocol doc', () => {
    const frame =
      '00000040' +
      '5b352c392c2266696c65222c5b7b226e616d65223a22612e62696e222c22626f6479223a6e756c6c7d5d2c302c5b5b5b302c22626f6479225d2c302c305d5d5d' +
      '00000003010203'
    expect(hex(encodeFrame(file) as Uint8Array)).toBe(frame)
    const result = decodeFrame(fromHex(frame))
    expect(result.ok && result.packet).toEqual(file)
  })

  it('keeps ArrayBuffer and Uint8Array apart, anywhere in the arguments, on both forms', () => {
    const buffer = new Uint8Array([255, 0, 7]).buffer
    const packet: Packet = {
      type: PacketType.REPLY,
      seq: 5,
      ackId: 2,
      args: [new Uint8Array([]), { deep: [[{ buffer }]], n: 1 }, 'text', new Uint8Array(70_000).fill(42)],
    }
    for (const wire of [encodeText(packet), encodeFrame(packet)]) {
      const result = typeof wire === 'string' ? decodeText(wire) : decodeFrame(wire)
      expect(result.ok).toBe(true)
      if (!result.ok || result.packet.type !== PacketType.REPLY) continue
      const [empty, nested, text, big] = result.packet.args as [
        Uint8Array,
        { deep: [[{ buffer: ArrayBuffer }]] },
        string,
        Uint8Array,
      ]
      expect(empty).toBeInstanceOf(Uint8Array)
      expect(empty.length).toBe(0)
      expect(nested.deep[0][0].buffer).toBeInstanceOf(ArrayBuffer)
      expect([...new Uint8Array(nested.deep[0][0].buffer)]).toEqual([255, 0, 7])
      expect(text).toBe('text')
      expect(big.length).toBe(70_000)
      expect(big.every((b) => b === 42)).toBe(true)
    }
  })

  it('sends other typed arrays as their bytes', () => {
    const floats = new Float32Array([1.5])
    const result = decodeText(
      encodeText({
        type: PacketType.EVENT,
        seq: 1,
        name: 'f',
        args: [floats as unknown as Uint8Array],
        ackId: 0,
      }),
    )
    expect(
      result.ok && result.packet.type === PacketType.EVENT && [...(result.packet.args[0] as Uint8Array)],
    ).toEqual([...new Uint8Array(floats.buffer)])
  })

  it('does not touch the caller’s arguments', () => {
    const args = [{ body: new Uint8Array([1]) }]
    encodeText({ type: PacketType.EVENT, seq: 1, name: 'x', args, ackId: 0 })
    expect(args[0]!.body).toBeInstanceOf(Uint8Array)
  })

  it('tells no binary when a getter gives bytes to the first look and none to the copy', () => {
    /** An argument whose `body` is bytes once, then text: what a getter that changes may do. */
    const shifting = () => {
      let reads = 0
      return [
        {
          get body(): unknown {
            reads++
            return reads === 1 ? new Uint8Array([1]) : 'text'
          },
        },
      ]
    }
    const plain = '[5,1,"x",[{"body":"text"}],0]'
    const event = (args: unknown[]): Packet =>
      ({ type: PacketType.EVENT, seq: 1, name: 'x', args, ackId: 0 }) as Packet
    expect(encodeTextTelling(event(shifting()))).toEqual({ text: plain, binary: false })
    // The WebSocket form is the same text frame, with no empty list of leaves.
    expect(encodeFrame(event(shifting()))).toBe(plain)
    expect(decoded(plain)).toEqual(event([{ body: 'text' }]))
  })
})

describe('batches (HTTP bodies)', () => {
  it('decodes one packet per line and ignores a trailing newline', () => {
    const result = decodeBatch('[2]\n[4,3]\n[5,1,"a",[],0]\n')
    expect(result.ok && result.packets.map((p) => p.type)).toEqual([
      PacketType.PING,
      PacketType.ACK,
      PacketType.EVENT,
    ])
  })

  it('refuses the whole body when one line is bad', () => {
    const result = decodeBatch('[2]\n[4,-1]')
    expect(!result.ok && result.error.code).toBe('PARLEY_INVALID_SEQ')
  })

  it('refuses an empty body', () => {
    expect(decodeBatch('\n').ok).toBe(false)
  })

  it('decodes a body cut into its lines as it decodes the body, empty lines skipped', () => {
    const body = '[2]\n\n[4,3]\n[5,1,"a",[],0]\n'
    expect(decodeLines(body.split('\n'))).toEqual(decodeBatch(body))
    expect(decodeLines(['[2]', '[4,-1]'])).toEqual(decodeBatch('[2]\n[4,-1]'))
    const empty = decodeLines(['', ''])
    expect(!empty.ok && empty.error.code).toBe('PARLEY_INVALID_PACKET')
    const long = decodeLines(['[2]', `[5,1,"a",["${'x'.repeat(100)}"],0]`], { maxPayload: 50 })
    expect(!long.ok && long.error.code).toBe('PARLEY_PAYLOAD_TOO_LARGE')
  })
})

describe('encoding errors', () => {
  it('throws a coded error for values JSON cannot carry', () => {
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    expect(() =>
      encodeText({ type: PacketType.EVENT, seq: 1, name: 'x', args: [cyclic as never], ackId: 0 }),
    ).toThrow(expect.objectContaining({ code: 'PARLEY_UNSERIALIZABLE' }))
    expect(() =>
      encodeText({ type: PacketType.EVENT, seq: 1, name: 'x', args: [10n as never], ackId: 0 }),
    ).toThrow(expect.objectContaining({ code: 'PARLEY_UNSERIALIZABLE' }))
  })
})
