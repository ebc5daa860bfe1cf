import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { checkEncoded, decodeText } from './decode.js'
import { pastBytes, utf8Length } from './utf8.js'

const encoder = new TextEncoder()

describe('utf8Length', () => {
  it('counts what TextEncoder writes, lone surrogates as U+FFFD', () => {
    for (const text of [
      '',
      'a',
      'é',
      '€',
      '😀',
      '界a😀é',
      '\ud800',
      '\udc00',
      'a\ud800b',
      '\ud83d\ude00\ud83d',
    ])
      expect(utf8Length(text), JSON.stringify(text)).toBe(encoder.encode(text).length)
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 64 }), (text) => {
        expect(utf8Length(text)).toBe(encoder.encode(text).length)
      }),
    )
  })
})

describe('pastBytes', () => {
  it('is past the limit exactly when the UTF-8 bytes are, in every band of length', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 64 }),
        fc.integer({ min: 0, max: 256 }),
        (text, limit) => {
          expect(pastBytes(text, limit)).toBe(encoder.encode(text).length > limit)
        },
      ),
    )
  })
})

describe('maxPayload in bytes', () => {
  // `[5,1,"e",["` + 333 CJK characters (999 bytes) + `"],0]`: 1015 bytes in 349 characters.
  const packet = `[5,1,"e",["${'界'.repeat(333)}"],0]`
  const bytes = encoder.encode(packet).length

  it('decodes multi-byte text up to the limit, and refuses it one byte under, naming bytes', () => {
    expect(decodeText(packet, { maxPayload: bytes }).ok).toBe(true)
    expect(decodeText(packet, { maxPayload: bytes - 1 })).toMatchObject({
      ok: false,
      error: {
        code: 'PARLEY_PAYLOAD_TOO_LARGE',
        message: `event "e": packet is larger than ${bytes - 1} bytes`,
      },
    })
  })

  it('lets a sender send it up to the limit, and tells its size in bytes one under', () => {
    expect(checkEncoded(packet, bytes)).toBeUndefined()
    expect(checkEncoded(packet, bytes - 1)).toMatchObject({
      code: 'PARLEY_PAYLOAD_TOO_LARGE',
      message: `the packet is ${bytes} bytes, past maxPayload (${bytes - 1} bytes)`,
      details: { size: bytes, limit: bytes - 1 },
    })
  })
})
