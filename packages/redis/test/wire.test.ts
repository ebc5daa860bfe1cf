// What crosses Redis is read back as untrusted input: anything malformed is refused, never thrown on.
import { MAX_TIMER_MS, prepareEvent } from '@parley/protocol'
import { describe, expect, expectTypeOf, it } from 'vitest'
import {
  decodeEvent,
  MAX_ADOPTIONS,
  MAX_NODE_SOCKETS,
  packParams,
  packSocket,
  packValue,
  parseBroadcast,
  parseMembership,
  parsePlaces,
  parseRequest,
  parseResponse,
  type RequestPacket,
  unpackParams,
  unpackSocket,
  unpackValue,
} from '../src/wire.js'

const junk = [
  '',
  'not json',
  'null',
  '[]',
  '42',
  '{"n":1}',
  '{"__proto__":{"polluted":true}}',
  '{"n":"a","e":"x","o":{"r":"lobby","x":[],"v":false}}',
  '{"n":"a","id":"1","k":"join","o":{"r":[],"x":[],"v":false}}',
  '{"n":"a","id":"1","k":"count","c":-1}',
  // A count no node can have: failing its replies one by one would hold the process.
  `{"n":"a","id":"1","k":"count","c":${MAX_NODE_SOCKETS + 1}}`,
  '{"n":"a","id":"1","k":"reply","ok":true}',
  '{"n":"a","id":"1","k":"nope"}',
  '{"n":"a","id":"","k":"resubscribed","q":-1}',
  '{"n":"a","id":"","k":"resubscribed"}',
]

describe('the messages between nodes', () => {
  it('refuses malformed messages without throwing', () => {
    for (const text of junk) {
      expect(parseBroadcast(text)).toBeUndefined()
      expect(parseMembership(text)).toBeUndefined()
      expect(parseRequest(text)).toBeUndefined()
      expect(parseResponse(text)).toBeUndefined()
      expect(decodeEvent(text)).toBeUndefined()
      expect(unpackValue(text)).toEqual({ ok: false })
      expect(unpackSocket(text)).toBeUndefined()
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    const ack = { n: 'a', id: '1', k: 'ack', o: { r: [], x: [], v: false }, e: '[5,0,"x",[],0]', t: 10 }
    expect(parseRequest(JSON.stringify(ack))).toEqual(ack)
    const count = { n: 'a', id: '1', k: 'count', c: MAX_NODE_SOCKETS }
    expect(parseResponse(JSON.stringify(count))).toEqual(count)
    const note = { n: 'a', id: '', k: 'resubscribed', q: 3 }
    expect(parseResponse(JSON.stringify(note))).toEqual(note)
    expect(parseRequest(JSON.stringify({ ...ack, t: -1 }))).toBeUndefined()
    // A query asked again of one node names it (`to`): a node id when given.
    const join = { n: 'a', id: '1', k: 'join', o: { r: [], x: [], v: false }, rooms: ['r'] }
    expect(parseRequest(JSON.stringify({ ...join, to: 'b' }))).toEqual({ ...join, to: 'b' })
    expect(parseRequest(JSON.stringify({ ...join, to: 1 }))).toBeUndefined()
    const fetch = { n: 'a', id: '1', k: 'fetch', o: { r: [], x: [], v: false } }
    expect(parseRequest(JSON.stringify({ ...fetch, to: 'b' }))).toEqual({ ...fetch, to: 'b' })
    expect(parseRequest(JSON.stringify({ ...fetch, to: null }))).toBeUndefined()
    // So does a broadcast with acks asked again of one node.
    expect(parseRequest(JSON.stringify({ ...ack, to: 'b' }))).toEqual({ ...ack, to: 'b' })
    expect(parseRequest(JSON.stringify({ ...ack, to: 1 }))).toBeUndefined()
    // Its count is optional (a sender of an earlier version sends none), and a count when given.
    expect(parseRequest(JSON.stringify({ ...ack, q: 4 }))).toEqual({ ...ack, q: 4 })
    expect(parseRequest(JSON.stringify({ ...ack, q: -1 }))).toBeUndefined()
    expect(parseRequest(JSON.stringify({ ...ack, q: '4' }))).toBeUndefined()
    // What was left of its timeout as it left: optional too (a sender of an earlier version sends
    // none, and is read as before), a timeout when given.
    expect(parseRequest(JSON.stringify({ ...ack, l: 7 }))).toEqual({ ...ack, l: 7 })
    expect(parseRequest(JSON.stringify({ ...ack, l: -1 }))).toBeUndefined()
    expect(parseRequest(JSON.stringify({ ...ack, l: '7' }))).toBeUndefined()
    // When its sender stops waiting, on Redis' clock: optional as well, a finite time when given.
    expect(parseRequest(JSON.stringify({ ...ack, l: 7, d: 1_700_000_000_123 }))).toEqual({
      ...ack,
      l: 7,
      d: 1_700_000_000_123,
    })
    expect(parseRequest(JSON.stringify({ ...ack, d: -1 }))).toBeUndefined()
    expect(parseRequest(JSON.stringify({ ...ack, d: '1' }))).toBeUndefined()
    expect(parseRequest(`${JSON.stringify({ ...ack }).slice(0, -1)},"d":1e999}`)).toBeUndefined()
    // Which Redis server `d` is on: hex digits of its run_id, optional.
    const run = '0123456789abcdef'
    expect(parseRequest(JSON.stringify({ ...ack, l: 7, d: 1, r: run }))).toEqual({
      ...ack,
      l: 7,
      d: 1,
      r: run,
    })
    expect(parseRequest(JSON.stringify({ ...ack, r: 7 }))).toBeUndefined()
    expect(parseRequest(JSON.stringify({ ...ack, r: 'not hex' }))).toBeUndefined()
    expect(parseRequest(JSON.stringify({ ...ack, r: 'a'.repeat(41) }))).toBeUndefined()
    expect(parseMembership('{"n":"a","k":"joined"}')).toEqual({ n: 'a', k: 'joined' })
    expect(parseMembership('{"n":"a","k":"left"}')).toEqual({ n: 'a', k: 'left' })
    expect(parseMembership('{"n":"a","k":"stayed"}')).toBeUndefined()
    // A join that says where the node is; what it says is taken whole or not at all.
    const joined = { n: 'a', k: 'joined', a: 'http://10.0.0.7:3000', v: 2, p: '/parley' }
    expect(parseMembership(JSON.stringify(joined))).toEqual(joined)
    expect(parseMembership(JSON.stringify({ ...joined, p: 7 }))).toEqual({ n: 'a', k: 'joined' })
    expect(parseMembership(JSON.stringify({ ...joined, v: '2' }))).toEqual({ n: 'a', k: 'joined' })
    expect(parseMembership(JSON.stringify({ ...joined, k: 'left' }))).toEqual({ n: 'a', k: 'left' })
    expect(parseRequest(JSON.stringify({ ...ack, e: undefined }))).toBeUndefined()
    // Every node sends an ack request's timeout: without it the request is malformed, and its
    // handler, which reads what the parser let through, has no default to fall back on.
    expect(parseRequest(JSON.stringify({ ...ack, t: undefined }))).toBeUndefined()
    expectTypeOf<Extract<RequestPacket, { k: 'ack' }>['t']>().toEqualTypeOf<number>()
    expectTypeOf<Extract<RequestPacket, { k: 'ack' }>['e']>().toEqualTypeOf<string>()
    expectTypeOf<Extract<RequestPacket, { k: 'join' | 'leave' }>['rooms']>().toEqualTypeOf<string[]>()
    // How many replies a node made (see lost-replies.test.ts), and its answer.
    const ask = { n: 'a', id: '1', k: 'replied', to: 'b' }
    expect(parseRequest(JSON.stringify(ask))).toEqual(ask)
    expect(parseRequest(JSON.stringify({ ...ask, to: 1 }))).toBeUndefined()
    const made = { n: 'b', id: '1', k: 'replied', c: 2, all: false }
    expect(parseResponse(JSON.stringify(made))).toEqual(made)
    expect(parseResponse(JSON.stringify({ ...made, c: -1 }))).toBeUndefined()
    expect(parseResponse(JSON.stringify({ ...made, all: 'yes' }))).toBeUndefined()
    // A handoff request names the route parameters of the resume that asks; one of an earlier
    // version names none.
    const handoff = { n: 'a', id: '2', k: 'handoff', to: 'b', sid: 's', a: true }
    expect(parseRequest(JSON.stringify(handoff))).toEqual(handoff)
    expect(parseRequest(JSON.stringify({ ...handoff, p: { tenant: 'acme' } }))).toEqual({
      ...handoff,
      p: { tenant: 'acme' },
    })
    for (const p of [{ tenant: 1 }, ['acme'], 'acme', null])
      expect(parseRequest(JSON.stringify({ ...handoff, p }))).toBeUndefined()
    // A packet of another kind is not an event, nor a value.
    expect(decodeEvent(packValue(1))).toBeUndefined()
    expect(unpackValue(prepareEvent('x', []).text(0, 0))).toEqual({ ok: false })
  })

  it('reads an adoption request whole, and refuses any other shape', () => {
    const adopt = {
      n: 'a',
      id: '1',
      k: 'adopt',
      to: 'b',
      s: [
        ['sid-1', {}, 5000],
        ['sid-2', { tenant: 'acme' }, 0],
      ],
    }
    expect(parseRequest(JSON.stringify(adopt))).toEqual(adopt)
    expect(parseRequest(JSON.stringify({ ...adopt, s: [] }))).toEqual({ ...adopt, s: [] })
    expect(parseResponse('{"n":"b","id":"1","k":"adopted","c":2}')).toEqual({
      n: 'b',
      id: '1',
      k: 'adopted',
      c: 2,
    })
    for (const s of [
      undefined,
      'sid-1',
      [['sid-1', {}]],
      [['', {}, 5000]],
      [[1, {}, 5000]],
      [['sid-1', { tenant: 7 }, 5000]],
      [['sid-1', null, 5000]],
      [['sid-1', {}, -1]],
      [['sid-1', {}, '5000']],
      // Past what a timer holds: it would fire at once.
      [['sid-1', {}, MAX_TIMER_MS + 1]],
      Array.from({ length: MAX_ADOPTIONS + 1 }, () => ['sid-1', {}, 1]),
    ])
      expect(parseRequest(JSON.stringify({ ...adopt, s }))).toBeUndefined()
    expect(parseRequest(JSON.stringify({ ...adopt, to: undefined }))).toBeUndefined()
    // Asked to say at once that it took the request, and how long its asker waits.
    const saying = { ...adopt, a: true, w: 900 }
    expect(parseRequest(JSON.stringify(saying))).toEqual(saying)
    for (const a of [false, 1, 'yes']) expect(parseRequest(JSON.stringify({ ...adopt, a }))).toBeUndefined()
    for (const w of [-1, '900', null]) expect(parseRequest(JSON.stringify({ ...adopt, w }))).toBeUndefined()
    expect(parseResponse('{"n":"b","id":"1","k":"adopted","c":-1}')).toBeUndefined()
    expect(parseResponse('{"n":"b","id":"1","k":"adopted"}')).toBeUndefined()
  })

  it("reads an old node's places on the channel, and refuses any other shape: the claimer then filters nothing", () => {
    expect(parsePlaces('{"a":3,"b":0}')).toEqual(
      new Map([
        ['a', { q: 3, skipped: [] }],
        ['b', { q: 0, skipped: [] }],
      ]),
    )
    // With ranges of its own broadcasts given up above the place.
    expect(parsePlaces('{"a":[3,[5,5],[7,9]]}')).toEqual(
      new Map([
        [
          'a',
          {
            q: 3,
            skipped: [
              [5, 5],
              [7, 9],
            ],
          },
        ],
      ]),
    )
    expect(parsePlaces('{}')).toEqual(new Map())
    // A node of an earlier version wrote none.
    expect(parsePlaces('')).toBeUndefined()
    const refused = [
      'not json',
      'null',
      '[]',
      '[1]',
      '42',
      '"a"',
      '{"a":-1}',
      '{"a":1.5}',
      '{"a":"3"}',
      '{"a":null}',
      '{"a":1e300}',
      '{"a":[]}',
      '{"a":[3,[5]]}',
      '{"a":[3,[6,5]]}',
      '{"a":[3,[5,"6"]]}',
      '{"a":[3,5]}',
      '{"__proto__":{"polluted":true}}',
    ]
    for (const text of refused) {
      expect(parsePlaces(text), text).toBeUndefined()
    }
  })

  it('reads back events and values as they left, binary included', () => {
    const bytes = new Uint8Array([0, 255, 7])
    const event = decodeEvent(prepareEvent('file', ['a', { deep: [bytes] }]).text(0, 0))
    expect(event!.name).toBe('file')
    expect(event!.args[0]).toBe('a')
    expect(new Uint8Array((event!.args[1] as { deep: Uint8Array[] }).deep[0]!)).toEqual(bytes)
    const value = unpackValue(packValue({ n: 1, b: bytes }))
    expect(value.ok && new Uint8Array((value.value as { b: Uint8Array }).b)).toEqual(bytes)
  })

  it('describes a socket whose data JSON cannot carry, without that data', () => {
    const handshake = {
      headers: {},
      query: {},
      auth: undefined,
      address: '127.0.0.1',
      time: '',
      issued: 0,
      url: '/parley/ws?v=1',
      params: {},
    }
    const text = packSocket({
      id: 's1',
      handshake: { ...handshake, transport: 'sse' },
      rooms: new Set(['s1', 'r']),
      data: { big: 1n },
    })
    expect(unpackSocket(text)).toMatchObject({ id: 's1', rooms: new Set(['s1', 'r']), data: undefined })
  })

  it('refuses a socket whose handshake is not one: the application would read it as one', () => {
    const handshake = {
      headers: { host: 'example.com', 'x-many': ['a', 'b'] },
      query: { v: '1' },
      address: '127.0.0.1',
      time: new Date(0).toISOString(),
      issued: 0,
      transport: 'websocket',
      url: '/acme/parley/ws?v=1',
      params: { tenant: 'acme' },
    }
    const socket = (shake: unknown) => packValue({ id: 's1', handshake: shake, rooms: ['s1'], data: null })
    expect(unpackSocket(socket(handshake))?.handshake).toEqual(handshake)
    for (const odd of [
      { transport: 'websocket' },
      { ...handshake, headers: null },
      { ...handshake, headers: { host: 1 } },
      { ...handshake, query: { v: ['1'] } },
      { ...handshake, address: undefined },
      { ...handshake, time: 0 },
      { ...handshake, issued: '0' },
      { ...handshake, transport: 'carrier pigeon' },
      { ...handshake, url: 1 },
      { ...handshake, params: { tenant: 1 } },
    ]) {
      expect(unpackSocket(socket(odd))).toBeUndefined()
    }
    // A node of an earlier version says neither.
    const { url: _url, params: _params, ...earlier } = handshake
    expect(unpackSocket(socket(earlier))?.handshake).toEqual({ ...earlier, url: '', params: {} })
  })
})

describe('route parameters as a handoff hash keeps them', () => {
  it('read back as packed, whatever their order', () => {
    const params = { tenant: 'acme', region: 'eu' }
    expect(unpackParams(packParams(params))).toEqual(params)
    expect(unpackParams(packParams({}))).toEqual({})
    expect(Object.keys(unpackParams('[["__proto__","x"]]') ?? {})).toEqual(['__proto__'])
  })

  it.each([
    'not json',
    '{"tenant":"acme"}',
    '[["tenant"]]',
    '[["tenant",1]]',
    '[["tenant","acme"],["tenant","globex"]]',
  ])('are none from %s', (text) => {
    expect(unpackParams(text)).toBeUndefined()
  })
})
