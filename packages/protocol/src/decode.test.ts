import { describe, expect, it } from 'vitest'
import { malformed } from '../test/fixtures.js'
import { decodeFrame, decodeText } from './decode.js'

function codeOf(input: string | Uint8Array, maxPayload?: number): string | undefined {
  const result =
    typeof input === 'string' ? decodeText(input, { maxPayload }) : decodeFrame(input, { maxPayload })
  return result.ok ? undefined : result.error.code
}

describe('decoder refuses malformed packets with a coded error', () => {
  it.each(malformed)('%s → %s', (input, code) => {
    expect(codeOf(input)).toBe(code)
  })

  it('refuses oversized input before parsing it', () => {
    expect(codeOf(`[5,1,"big",["${'x'.repeat(2000)}"],0]`, 1000)).toBe('PARLEY_PAYLOAD_TOO_LARGE')
    expect(codeOf(new Uint8Array(2000), 1000)).toBe('PARLEY_PAYLOAD_TOO_LARGE')
  })

  it('accepts the keys and values that only look dangerous', () => {
    expect(codeOf('[5,1,"chat",[{"text":"__proto__ and constructor are words"}],0]')).toBeUndefined()
    expect(codeOf('[5,1,"chat",[{"proto":1,"Constructor":2}],0]')).toBeUndefined()
  })
})

describe('decoder refuses malformed binary frames', () => {
  const frame = (...parts: Array<string | number[]>) => {
    const bytes: number[] = []
    for (const part of parts)
      bytes.push(...(typeof part === 'string' ? new TextEncoder().encode(part) : part))
    return new Uint8Array(bytes)
  }
  const header = '[5,1,"f",[null],0,[[[0],0,0]]]'
  const length = [0, 0, 0, header.length]

  it('accepts the well-formed frame the others are mutations of', () => {
    expect(codeOf(frame(length, header, [0, 0, 0, 1, 7]))).toBeUndefined()
  })

  it.each([
    ['shorter than its length prefix', frame([0, 0])],
    ['header length past the end', frame([0, 0, 1, 0], header)],
    ['attachment length past the end', frame(length, header, [0, 0, 0, 9, 7])],
    ['truncated attachment length', frame(length, header, [0, 0])],
    ['missing attachment', frame(length, header)],
    ['extra attachment', frame(length, header, [0, 0, 0, 1, 7], [0, 0, 0, 1, 8])],
    [
      'attachment index out of order',
      frame([0, 0, 0, header.length], header.replace(',0]]]', ',1]]]'), [0, 0, 0, 1, 7]),
    ],
    ['header that is not UTF-8', frame([0, 0, 0, 2], [0xff, 0xfe])],
  ])('%s', (_name, bytes) => {
    const result = decodeFrame(bytes)
    expect(result.ok).toBe(false)
    expect(result.ok || result.error.code).toMatch(/^PARLEY_/)
  })

  it('refuses more attachments than the header can refer to before it takes them apart', () => {
    // A header of one leaf, then 240 000 empty attachments: 4 bytes each on the wire.
    const many = new Uint8Array(4 + header.length + 4 * 240_000)
    many.set(frame(length, header))
    const result = decodeFrame(many)
    expect(result.ok || result.error).toMatchObject({
      code: 'PARLEY_INVALID_BINARY',
      // The event, read from the head of the frame's header.
      message: 'event "f": frame carries more attachments than its header refers to',
    })
    // As many attachments as leaves of the shortest form: all taken.
    const leaves = '[5,1,"f",[null,null],0,[[[0],0,0],[[1],0,1]]]'
    const two = frame([0, 0, 0, leaves.length], leaves, [0, 0, 0, 0], [0, 0, 0, 0])
    expect(codeOf(two)).toBeUndefined()
  })
})
