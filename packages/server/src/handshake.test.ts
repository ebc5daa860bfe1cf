import { describe, expect, it } from 'vitest'
import { type HandshakeRequest, SocketHandshake } from './handshake.js'

const ISSUED = Date.UTC(2026, 0, 2, 3, 4, 5, 6)

const request = (overrides: Partial<HandshakeRequest> = {}): HandshakeRequest => ({
  headers: { host: 'chat.example', 'user-agent': 'test', cookie: 'a=1; b=2' },
  query: { v: '1', room: 'lobby' },
  address: '10.0.0.1',
  url: '/acme/parley/ws?v=1&room=lobby',
  params: { tenant: 'acme' },
  ...overrides,
})

/** The plain object a handshake stands for, as it was made before. */
const plain = (from: HandshakeRequest) => ({
  headers: from.headers,
  query: from.query,
  auth: { token: 't' },
  address: from.address,
  time: new Date(ISSUED).toISOString(),
  issued: ISSUED,
  transport: 'websocket',
  url: from.url,
  params: from.params,
})

describe('a socket handshake', () => {
  it('reads as the plain object it stands for: members, their order, spreading and JSON', () => {
    const handshake = new SocketHandshake(request(), { token: 't' }, 'websocket', ISSUED)
    const expected = plain(request())
    expect(Object.keys(handshake)).toEqual(Object.keys(expected))
    expect({ ...handshake }).toEqual(expected)
    expect(JSON.stringify(handshake)).toBe(JSON.stringify(expected))
    expect(handshake.time).toBe('2026-01-02T03:04:05.006Z')
  })

  it("reads a request without url and params as one of a route without parameters: '' and {}", () => {
    const { url: _url, params: _params, ...before } = request()
    const handshake = new SocketHandshake(before, undefined, 'polling', ISSUED)
    expect([handshake.url, handshake.params]).toEqual(['', {}])
  })

  it('gives the same headers and query objects on every read, and keeps changes made to them', () => {
    const handshake = new SocketHandshake(request(), undefined, 'sse', ISSUED)
    const headers = handshake.headers
    expect(handshake.headers).toBe(headers)
    headers['x-seen'] = 'yes'
    expect(handshake.query).toBe(handshake.query)
    handshake.query.extra = '1'
    expect(handshake.headers).toEqual({ ...request().headers, 'x-seen': 'yes' })
    expect(handshake.query).toEqual({ v: '1', room: 'lobby', extra: '1' })
  })

  it('reads the query first as well as the headers first', () => {
    const handshake = new SocketHandshake(request(), undefined, 'polling', ISSUED)
    expect(handshake.query).toEqual(request().query)
    expect(handshake.headers).toEqual(request().headers)
    expect(handshake.query).toEqual(request().query)
  })

  it('takes an assignment to any member, as a plain object does', () => {
    const handshake = new SocketHandshake(request(), undefined, 'websocket', ISSUED)
    handshake.headers = { host: 'other' }
    handshake.query = { v: '2' }
    handshake.time = 'then'
    handshake.address = '10.0.0.2'
    handshake.issued = ISSUED + 1
    expect(handshake).toMatchObject({
      headers: { host: 'other' },
      query: { v: '2' },
      time: 'then',
      address: '10.0.0.2',
      issued: ISSUED + 1,
    })
    expect(Object.keys(handshake)).toEqual([
      'headers',
      'query',
      'auth',
      'address',
      'time',
      'issued',
      'transport',
      'url',
      'params',
    ])
  })

  it('keeps when it was issued to the millisecond, and writes it out as time', () => {
    const now = Date.now()
    const fresh = new SocketHandshake(request(), undefined, 'websocket')
    expect(fresh.issued).toBeGreaterThanOrEqual(now)
    expect(fresh.time).toBe(new Date(fresh.issued).toISOString())
    for (const issued of [0, ISSUED, now + 30 * 86_400_000]) {
      const handshake = new SocketHandshake(request(), undefined, 'websocket', issued)
      expect(handshake.issued).toBe(issued)
      expect(handshake.time).toBe(new Date(issued).toISOString())
    }
  })

  it('keeps empty values and names, and headers or a query that are not plain strings, as given', () => {
    const empty = new SocketHandshake(
      request({ headers: { host: '' }, query: { '': 'x', y: '' } }),
      undefined,
      'sse',
    )
    expect(empty.headers).toEqual({ host: '' })
    expect(empty.query).toEqual({ '': 'x', y: '' })
    // An onRequest hook may set a header to anything; a query value may hold a NUL (%00).
    const odd = { host: 'h', 'x-count': 3 as unknown as string, 'set-cookie': ['a', 'b'] }
    const kept = new SocketHandshake(request({ headers: odd, query: { q: 'a\0b\u0001c' } }), undefined, 'sse')
    expect(kept.headers).toEqual(odd)
    expect(kept.query).toEqual({ q: 'a\0b\u0001c' })
  })

  it('makes the query an object of its own, whose `__proto__` key does not change its prototype', () => {
    const query = JSON.parse('{"__proto__":"x","v":"1"}') as Record<string, string>
    const handshake = new SocketHandshake(request({ query }), undefined, 'sse')
    expect(Object.getPrototypeOf(handshake.query)).toBe(Object.prototype)
    expect(handshake.query.v).toBe('1')
  })
})
