import { describe, expect, it } from 'vitest'
import { decodeFrame, decodeText } from './decode.js'

function codeOf(input: string | Uint8Array, maxPayload?: number): string | undefined {
  const result =
    typeof input === 'string' ? decodeText(input, { maxPayload }) : decodeFrame(input, { maxPayload })
  return result.ok ? undefined : result.error.code
}

describe('decoder refuses malformed packets with a coded error', () => {
  it.each([
    ['', 'PARLEY_INVALID_JSON'],
    ['[5,1,"chat",[{"text":"hel', 'PARLEY_INVALID_JSON'],
    ['{"type":5}', 'PARLEY_INVALID_PACKET'],
    ['[]', 'PARLEY_INVALID_PACKET'],
    ['"hello"', 'PARLEY_INVALID_PACKET'],
    ['null', 'PARLEY_INVALID_PACKET'],
    ['[42]', 'PARLEY_UNKNOWN_PACKET_TYPE'],
    ['["5",1,"chat",[],0]', 'PARLEY_UNKNOWN_PACKET_TYPE'],
    ['[2,1]', 'PARLEY_INVALID_PACKET'],
    ['[5,1,42,[],0]', 'PARLEY_INVALID_EVENT_NAME'],
    ['[5,1,"",[],0]', 'PARLEY_INVALID_EVENT_NAME'],
    ['[5,1,null,[],0]', 'PARLEY_INVALID_EVENT_NAME'],
    [`[5,1,"${'x'.repeat(257)}",[],0]`, 'PARLEY_INVALID_EVENT_NAME'],
    ['[5,1,"disconnect",[],0]', 'PARLEY_RESERVED_EVENT_NAME'],
    ['[5,1,"connect",[],0]', 'PARLEY_RESERVED_EVENT_NAME'],
    ['[5,1,"chat",{"0":1},0]', 'PARLEY_INVALID_PACKET'],
    ['[5,1,"chat",[],1.5]', 'PARLEY_INVALID_ACK_ID'],
    ['[5,1,"chat",[],-1]', 'PARLEY_INVALID_ACK_ID'],
    ['[5,1,"chat",[],9007199254740993]', 'PARLEY_INVALID_ACK_ID'],
    ['[5,1,"chat",[],"1"]', 'PARLEY_INVALID_ACK_ID'],
    ['[5,-1,"chat",[],0]', 'PARLEY_INVALID_SEQ'],
    ['[5,1e300,"chat",[],0]', 'PARLEY_INVALID_SEQ'],
    ['[5,1,"chat",[]]', 'PARLEY_INVALID_PACKET'],
    ['[5,1,"chat",[],0,[],9]', 'PARLEY_INVALID_PACKET'],
    ['[6,0,1,[]]', 'PARLEY_INVALID_SEQ'],
    ['[6,1,0,[]]', 'PARLEY_INVALID_ACK_ID'],
    ['[7,1,1,"",""]', 'PARLEY_INVALID_PACKET'],
    ['[7,1,1,"X",5]', 'PARLEY_INVALID_PACKET'],
    ['[4]', 'PARLEY_INVALID_SEQ'],
    ['[4,"3"]', 'PARLEY_INVALID_SEQ'],
    ['[1,"bored","bye"]', 'PARLEY_INVALID_PACKET'],
    ['[1,"client disconnect",7]', 'PARLEY_INVALID_PACKET'],
    ['[1,"client disconnect","bye",-5]', 'PARLEY_INVALID_PACKET'],
    ['[8,null]', 'PARLEY_INVALID_PACKET'],
    ['[8,{"sid":"../../etc"}]', 'PARLEY_INVALID_PACKET'],
    ['[8,{"sid":"abc","ack":-1}]', 'PARLEY_INVALID_SEQ'],
    ['[0,{"sid":"abc"}]', 'PARLEY_INVALID_PACKET'],
    [
      '[0,{"sid":"abc","pingInterval":1,"pingTimeout":1,"maxPayload":1,"transports":[],"recovered":false,"ack":0}]',
      'PARLEY_INVALID_PACKET',
    ],
    [
      '[0,{"sid":"abc","id":"a b","pingInterval":1,"pingTimeout":1,"maxPayload":1,"transports":[],"recovered":false,"ack":0}]',
      'PARLEY_INVALID_PACKET',
    ],
    ['[5,1,"chat",[{"__proto__":{"admin":true}}],0]', 'PARLEY_FORBIDDEN_KEY'],
    ['[5,1,"chat",[{"a":[{"constructor":{"prototype":{}}}]}],0]', 'PARLEY_FORBIDDEN_KEY'],
    ['[5,1,"chat",[{"\\u005f_proto__":1}],0]', 'PARLEY_FORBIDDEN_KEY'],
    ['[8,{"auth":{"__proto__":{"admin":true}}}]', 'PARLEY_FORBIDDEN_KEY'],
    [`[5,1,"deep",${'['.repeat(70)}${']'.repeat(70)},0]`, 'PARLEY_TOO_DEEP'],
    ['['.repeat(200_000), 'PARLEY_TOO_DEEP'],
    ['[5,1,"f",[null],0,[[[0],0,"AQ="]]]', 'PARLEY_INVALID_BINARY'],
    ['[5,1,"f",[null],0,[[[0],2,"AQ=="]]]', 'PARLEY_INVALID_BINARY'],
    ['[5,1,"f",[1],0,[[[0],0,"AQ=="]]]', 'PARLEY_INVALID_BINARY'],
    ['[5,1,"f",[null],0,[[[1],0,"AQ=="]]]', 'PARLEY_INVALID_BINARY'],
    ['[5,1,"f",[{"a":null}],0,[[[0,"b"],0,"AQ=="]]]', 'PARLEY_INVALID_BINARY'],
    ['[5,1,"f",[{"a":null}],0,[[[0,"toString"],0,"AQ=="]]]', 'PARLEY_INVALID_BINARY'],
    ['[5,1,"f",[null],0,[]]', 'PARLEY_INVALID_BINARY'],
    ['[5,1,"f",[null],0,[[[],0,"AQ=="]]]', 'PARLEY_INVALID_BINARY'],
  ])('%s → %s', (input, code) => {
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
})
