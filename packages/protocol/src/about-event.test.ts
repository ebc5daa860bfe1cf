// A refused packet names its event, read from its head alone, and an error about a payload that
// cannot go names the event it concerns, its code, details and cause kept.
import { describe, expect, it } from 'vitest'
import { aboutEvent, eventNameAtHead, namedAfterEvent } from './about-event.js'
import { decodeFrame, decodeText } from './decode.js'
import { ErrorCode, ParleyError } from './errors.js'

describe('eventNameAtHead', () => {
  it.each([
    ['an event', '[5,1,"chat",[],0]', 'chat'],
    ['spaces where JSON allows them', ' [ 5 , 12 , "chat" , [1] , 0 ]', 'chat'],
    ['an escaped name', '[5,1,"say \\"hi\\" \\u00e9",[],0]', 'say "hi" é'],
    ['a head followed by anything', '[5,1,"chat",{{{', 'chat'],
  ])('reads %s', (_what, text, name) => {
    expect(eventNameAtHead(text)).toBe(name)
  })

  it.each([
    ['a reply', '[6,1,3,[]]'],
    ['an error', '[7,1,3,"PARLEY_X","m"]'],
    ['a name the wire refuses (reserved)', '[5,1,"connect",[],0]'],
    ['a name the wire refuses (empty)', '[5,1,"",[],0]'],
    ['a name past 256 characters', `[5,1,"${'x'.repeat(257)}",[],0]`],
    ['a name cut short', '[5,1,"cha'],
    ['a name that is not a string', '[5,1,7,[],0]'],
    ['a bad escape', '[5,1,"\\x",[],0]'],
    ['not an array', '{"5":1}'],
  ])('reads nothing from %s', (_what, text) => {
    expect(eventNameAtHead(text)).toBeUndefined()
  })

  it('reads the head of a packet of any length, however long it goes on', () => {
    const huge = `[5,1,"chat",["${'x'.repeat(20_000_000)}`
    expect(eventNameAtHead(huge)).toBe('chat')
    // A name of the longest kind, each character escaped, is still read.
    const longest = `[5,1,"${'\\u0041'.repeat(256)}",[${'1,'.repeat(1000)}1],0]`
    expect(eventNameAtHead(longest)).toBe('A'.repeat(256))
  })
})

describe('a refused packet', () => {
  it('names its event, text or binary frame, the code as it was', () => {
    expect(decodeText('[5,1,"chat",[{"__proto__":1}],0]')).toMatchObject({
      ok: false,
      error: {
        code: ErrorCode.FORBIDDEN_KEY,
        message: 'event "chat": packet holds a "__proto__" or "constructor" key',
      },
    })
    expect(decodeText(`[5,1,"chat",["${'x'.repeat(100)}"],0]`, { maxPayload: 50 })).toMatchObject({
      ok: false,
      error: { code: ErrorCode.PAYLOAD_TOO_LARGE, message: 'event "chat": packet is larger than 50 bytes' },
    })
    const header = new TextEncoder().encode('[5,1,"up",[null],0,[[[0],0,0]]]')
    const frame = new Uint8Array(4 + header.length + 4 + 100)
    new DataView(frame.buffer).setUint32(0, header.length)
    frame.set(header, 4)
    new DataView(frame.buffer).setUint32(4 + header.length, 100)
    expect(decodeFrame(frame, { maxPayload: 50 })).toMatchObject({
      ok: false,
      error: { code: ErrorCode.PAYLOAD_TOO_LARGE, message: 'event "up": frame is larger than 50 bytes' },
    })
  })

  it('names nothing when its head is no event, or its name is what is wrong', () => {
    expect(decodeText('[6,1,3,[{"__proto__":1}]]')).toMatchObject({
      ok: false,
      error: { message: 'packet holds a "__proto__" or "constructor" key' },
    })
    expect(decodeText('[5,1,"disconnect",[],0]')).toMatchObject({
      ok: false,
      error: { code: ErrorCode.RESERVED_EVENT_NAME, message: '"disconnect" is a reserved event name' },
    })
  })
})

describe('namedAfterEvent', () => {
  it('names the event or the reply in a payload error, keeping its code, details and cause', () => {
    const cause = new Error('under')
    const error = new ParleyError(ErrorCode.PAYLOAD_TOO_LARGE, 'too big', {
      details: { limit: 1, size: 2 },
      cause,
    })
    const named = namedAfterEvent(error, 'price')
    expect(named).toBeInstanceOf(ParleyError)
    expect(named).toMatchObject({
      code: ErrorCode.PAYLOAD_TOO_LARGE,
      message: 'event "price": too big',
      details: { limit: 1, size: 2 },
      cause,
    })
    expect(namedAfterEvent(error, 'quote', true)).toMatchObject({ message: 'reply to "quote": too big' })
  })

  it('leaves any other error, and one that names the event already, as it is', () => {
    const other = new ParleyError(ErrorCode.ACK_TIMEOUT, 'late')
    expect(namedAfterEvent(other, 'price')).toBe(other)
    const plain = new Error('x')
    expect(namedAfterEvent(plain, 'price')).toBe(plain)
    const already = new ParleyError(ErrorCode.UNSERIALIZABLE, aboutEvent('price', 'not JSON'))
    expect(namedAfterEvent(already, 'price')).toBe(already)
    const unnamed = new ParleyError(ErrorCode.TOO_DEEP, 'deep')
    expect(namedAfterEvent(unnamed, undefined)).toBe(unnamed)
  })
})
