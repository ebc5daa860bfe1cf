// What went wrong with the connection, in words a person can act on, from the error's `code`
// (never its message, which may be reworded): see docs/errors.md for every code. The page keeps
// the client's own text beside these words, in a tooltip, for the developer reading the demo.
import type { CloseReason, ErrorCode } from '@parley/client'

export type TransportName = 'websocket' | 'sse' | 'polling'

/** What `transport_error` and `connect_error` carry, as far as the words need it. */
export interface Failure {
  code?: string
  details?: Readonly<Record<string, unknown>> | undefined
}

const NAMES: Record<TransportName, string> = { websocket: 'WebSocket', sse: 'SSE', polling: 'long-polling' }

/** A transport's name as people write it. */
export function transportName(transport: TransportName): string {
  return NAMES[transport]
}

/**
 * Why `transport` failed. `lost`: it had been carrying the chat (a dropped connection), rather
 * than failing to open (which, for a WebSocket refused with no word, is most often a network or
 * proxy that lets none through).
 */
export function transportFailure(transport: TransportName, error: Failure, lost: boolean): string {
  const name = NAMES[transport]
  switch (error.code as ErrorCode | undefined) {
    case 'PARLEY_SERVER_SHUTTING_DOWN':
      // A closing server, or a session moving between nodes (a deploy, a node that crashed).
      // Said once the page is connected again (the badge): so in the past.
      return 'the server was restarting'
    case 'PARLEY_SERVER_FULL':
      return 'the server was full'
    case 'PARLEY_TRANSPORT_DISABLED':
      return `the server does not offer ${name}`
    case 'PARLEY_UNKNOWN_SESSION':
      return 'the server no longer knew this page'
    case 'PARLEY_HANDSHAKE_TIMEOUT':
      return error.details?.stalled === true
        ? `${name} is held up on this network`
        : `${name} got no answer in time`
    default:
      return lost ? `the ${name} connection dropped` : `${name} is blocked on this network`
  }
}

/** Why the session ended (`disconnect`); the page reconnects after each but `client disconnect`. */
export function closeWords(reason: CloseReason | string): string {
  switch (reason as CloseReason) {
    case 'server shutdown':
      return 'the server is restarting'
    case 'server handoff':
      return 'the server handed this chat to another one'
    case 'server disconnect':
      return 'the server ended this chat'
    case 'client disconnect':
      return 'you left the chat'
    case 'session expired':
      return 'the server no longer knew this page'
    case 'slow consumer':
      return 'this page fell too far behind'
    default:
      // transport close, ping timeout, and what only a broken server or proxy causes.
      return 'the connection was lost'
  }
}

/** Why the client stopped trying (`connect_error` with `willRetry` false), or undefined for the error's own message. */
export function refusalWords(error: Failure): string | undefined {
  switch (error.code as ErrorCode | undefined) {
    case 'PARLEY_NOT_FOUND':
      return 'nothing answers at this address'
    case 'PARLEY_ORIGIN_FORBIDDEN':
      return 'the server does not accept this page’s address'
    case 'PARLEY_UNSUPPORTED_VERSION':
      return 'this page and the server are of different versions'
    default:
      // The chat's own refusals (a middleware's code) say themselves what is wrong.
      return undefined
  }
}

/** `text` with its first letter capitalised, to open a sentence. */
export function sentence(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1)
}
