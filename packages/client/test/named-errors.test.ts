// What an emit, or a reply to a server's request, cannot send names the event it is about, so
// that an application with many emits can tell which one failed: `event "<name>": ...` for an
// emit, `reply to "<name>": ...` for an ack's reply. The codes stay what they were (users match
// on them). Real client against the real server; nothing is sent, and the session goes on.
import { ErrorCode } from '@parley/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import { unheard } from '../../../test/support/unheard.js'
import { closeAll, pricesSession, STEADY_HEARTBEAT, thrown, until } from './helpers.js'

afterEach(closeAll)

const LIMIT = 2000
/**
 * The server's options: its maxPayload, and a heartbeat that a loaded machine does not miss (the
 * helpers' 1 s ping ended a session here once, under other test files): one session is asserted.
 */
const SERVER = { maxPayload: LIMIT, ...STEADY_HEARTBEAT }

/** `levels` objects around 1. */
const nest = (levels: number): unknown => (levels === 0 ? 1 : { a: nest(levels - 1) })

/** An object that holds itself. */
function cycle(): unknown {
  const value: Record<string, unknown> = {}
  value.self = value
  return value
}

/** Each value an emit or a reply cannot send, its code, and its message after the name. */
const REFUSED: [what: string, make: () => unknown, code: string, message: RegExp][] = [
  ['a BigInt', () => ({ n: 10n }), ErrorCode.UNSERIALIZABLE, /^not JSON \(.*BigInt.*\)$/],
  ['a cycle', cycle, ErrorCode.UNSERIALIZABLE, /^too deep or cyclic$/],
  ['100 levels of nesting', () => nest(100), ErrorCode.UNSERIALIZABLE, /^too deep or cyclic$/],
  [
    'a forbidden key',
    () => JSON.parse('{"constructor":1}'),
    ErrorCode.FORBIDDEN_KEY,
    /^payload holds a "constructor" key$/,
  ],
  [
    'a payload past maxPayload',
    () => 'x'.repeat(2 * LIMIT),
    ErrorCode.PAYLOAD_TOO_LARGE,
    new RegExp(`^\\d+ bytes > maxPayload ${LIMIT}$`),
  ],
]

/** The error `code` with the message `prefix` + one that `rest` matches. */
const named = (prefix: string, code: string, rest: RegExp) =>
  expect.objectContaining({
    code,
    message: expect.stringMatching(new RegExp(`^${prefix.replace(/[()"]/g, '\\$&')}${rest.source.slice(1)}`)),
  })

describe.each(['websocket', 'sse', 'polling'] as const)('over %s', (transport) => {
  it('names the event in the error of every kind of emit that cannot be sent, with the code it had', async () => {
    const { socket, got, sessions } = await pricesSession(transport, { server: SERVER })
    const seen = await unheard(async () => {
      for (const [, make, code, rest] of REFUSED) {
        const error = named('event "price": ', code, rest)
        expect(thrown(() => socket.emit('price', make()))).toEqual(error)
        expect(thrown(() => socket.volatile.emit('price', make()))).toEqual(error)
        expect(thrown(() => socket.timeout(1000).emit('price', make(), () => {}))).toEqual(error)
        await expect(socket.emitWithAck('price', make())).rejects.toEqual(error)
      }
      socket.emit('price', 'fine')
      await until(() => got.length > 0, 3000, 'the next emit')
    })
    expect(seen).toEqual([])
    expect(got).toEqual(['fine'])
    expect(sessions()).toBe(1)
    expect(socket.connected).toBe(true)
  })

  it('names the event a reply answers in the error of a reply that cannot be sent, and the next reply goes', async () => {
    const { socket, peer } = await pricesSession(transport, { server: SERVER })
    const errors: unknown[] = []
    socket.on('quote', (ack: (reply: unknown) => void) => {
      for (const [, make] of REFUSED) errors.push(thrown(() => ack(make())))
      ack('fine')
    })
    const serverSocket = await peer()
    let reply: unknown
    const seen = await unheard(async () => {
      reply = await serverSocket.emitWithAck('quote')
    })
    expect(seen).toEqual([])
    expect(reply).toBe('fine')
    expect(errors).toEqual(REFUSED.map(([, , code, rest]) => named('reply to "quote": ', code, rest)))
    expect(socket.connected).toBe(true)
  })
})
