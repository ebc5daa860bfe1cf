// The page's words for each failure come from its code and the transport's state, never from the
// client's message: the same code in other words must say the same thing.
import { ErrorCode } from '@parley/client'
import { describe, expect, it } from 'vitest'
import { closeWords, refusalWords, transportFailure } from '../src/page/describe-failure.js'

describe('describe-failure', () => {
  it('tells a WebSocket that never opened from one that dropped', () => {
    const error = { code: ErrorCode.TRANSPORT_ERROR }
    expect(transportFailure('websocket', error, false)).toBe('WebSocket is blocked on this network')
    expect(transportFailure('websocket', error, true)).toBe('the WebSocket connection dropped')
  })

  it('says what the server did, whichever transport met it', () => {
    for (const transport of ['websocket', 'sse', 'polling'] as const) {
      expect(transportFailure(transport, { code: ErrorCode.SERVER_SHUTTING_DOWN }, false)).toBe(
        'the server was restarting',
      )
      expect(transportFailure(transport, { code: ErrorCode.SERVER_FULL }, true)).toBe('the server was full')
    }
    expect(transportFailure('sse', { code: ErrorCode.TRANSPORT_DISABLED }, false)).toBe(
      'the server does not offer SSE',
    )
  })

  it('tells an event stream held up on the way from a handshake left unanswered', () => {
    const code = ErrorCode.HANDSHAKE_TIMEOUT
    expect(transportFailure('sse', { code, details: { stalled: true } }, false)).toBe(
      'SSE is held up on this network',
    )
    expect(transportFailure('polling', { code }, false)).toBe('long-polling got no answer in time')
  })

  it('puts every close reason in words, and leaves the chat’s own refusals to their message', () => {
    expect(closeWords('server shutdown')).toBe('the server is restarting')
    expect(closeWords('transport close')).toBe('the connection was lost')
    expect(closeWords('ping timeout')).toBe('the connection was lost')
    expect(refusalWords({ code: ErrorCode.ORIGIN_FORBIDDEN })).toMatch(/does not accept this page/)
    expect(refusalWords({ code: 'NICKNAME_TAKEN' })).toBeUndefined()
  })
})
