// Why a handshake or a resume is refused: the status and `{code, message}` its client gets.
import { ErrorCode } from '@parley/protocol'
import type { Session } from './session.js'
import { SHUTTING_DOWN } from './shutting-down.js'

/** Why a handshake was refused: the HTTP status and the `{code, message}` the client gets. */
export interface Refusal {
  status: number
  code: string
  message: string
  /**
   * The HELLO was read, and what was slow is the application's handshake middleware, not the
   * transport (PARLEY_HANDSHAKE_TIMEOUT): a client that reads it tries the same transport again
   * rather than its next one. On the wire, `"middleware": true` in an HTTP error body, `ackId`
   * 1 in a WebSocket's unnumbered ERROR (docs/protocol.md): older clients read neither.
   */
  middleware?: true
}

/**
 * A refusal the client meets by trying again, as after a node's shutdown (503
 * PARLEY_SERVER_SHUTTING_DOWN): `message` says why, for the client's error and the logs.
 */
export function tryAgain(message: string): Refusal {
  return { status: 503, code: ErrorCode.SERVER_SHUTTING_DOWN, message }
}

/** What a client reads of a request that failed inside the server (a bug, most likely). */
export const FAILED_INSIDE = 'the request failed inside the server: try again'

/**
 * A request that failed inside the server: not the client's to mend, so it tries again, as after
 * a node's shutdown.
 */
export function failedInside(): Refusal {
  return tryAgain(FAILED_INSIDE)
}

/**
 * A new session whose middleware called `socket.disconnect()`: the client is refused as if the
 * middleware had thrown, since a session that ended before it opened has nothing to attach.
 */
export function disconnectedEarly(session: Session): Refusal | null {
  if (session.state !== 'closed') return null
  return { status: 403, code: ErrorCode.REFUSED, message: 'the server disconnected the socket' }
}

/** A handshake or resume on a server that is closing: the client tries another node. */
export function shuttingDown(): Refusal {
  return tryAgain(SHUTTING_DOWN)
}

/**
 * A resume of a session this node is handing to another node (whose claim is on its way): the
 * client tries again, as after a node's shutdown, and finds it there.
 */
export function moving(): Refusal {
  return tryAgain('the session is moving to another node: try again')
}

/**
 * A resume of a session another node claimed first (one a draining node sent on, or one whose
 * session moved while its middleware ran): the client tries again, and is sent to that node.
 */
export function claimedElsewhere(): Refusal {
  return tryAgain('the session was taken over by another node: try again')
}

/**
 * A resume the adapter could not settle (see `Adapter.claimSession`): the store could not be
 * asked where the session lives, or its claim got no answer. The session may be there still, on
 * another node or claimable once the store answers. The client tries again.
 */
export function claimUnsettled(): Refusal {
  return tryAgain('the session could not be looked up or claimed in the store now: try again')
}

/**
 * A resume of a session whose claim was revoked: its old node kept it, having given up on the
 * write this node claimed (see `HandOffTail.kept`). The client tries again and finds it there.
 */
export function keptElsewhere(): Refusal {
  return tryAgain('the session stayed on its node: try again')
}

/**
 * A resume of a session that lives on a live node, though the resume's look-up of its owner
 * found none (see `ClaimMissed`): the client tries again, and is sent there.
 */
export function heldElsewhere(): Refusal {
  return tryAgain('the session lives on another node: try again')
}

/**
 * A resume of a session whose snapshot this node could not restore, and whose end it does not
 * know: the claim is spent, so the client's next try gets a new session (`recovered: false`).
 */
export function unrestorable(): Refusal {
  return tryAgain('the session could not be restored on this node: try again')
}

/** A resume of a session this node is still taking over from another: the client tries again. */
export function arriving(): Refusal {
  return tryAgain('the session is still arriving from another node: try again')
}
