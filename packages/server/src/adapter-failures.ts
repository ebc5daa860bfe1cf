import { ErrorCode } from '@parley/protocol'
import type { FastifyBaseLogger } from 'fastify'
import { BurstLog } from './burst-log.js'
import { isThenable } from './incoming.js'

/**
 * What this node logs when an adapter's promise rejects (or a call of it throws) on the way of
 * a handshake, a resume, a drain or a session's end. A store of the adapter's that goes away
 * for a moment fails every session that comes meanwhile, and a deploy or a blip brings many at
 * once: each kind is logged in one line per burst (see `BurstLog`), with the first `err` as the
 * example. The built-in adapters never reject these calls (@parley/redis logs its own troubles,
 * once per 10 s); an adapter of the application's may. At warn when the server went on as if
 * the call had found nothing; at error when a client or the rooms paid for it.
 */
/** What a client reads of a handshake that failed inside the server (see `Server.handshakeFailed`). */
export const HANDSHAKE_FAILED = 'the handshake failed inside the server: try again'

/**
 * What a call of the adapter's on a handshake's way threw or rejected with (its `cause`), thrown
 * on in its place: `Server.handshakeFailed` logs the adapter's failures (its store away, for
 * every client meanwhile) apart from any other error inside the server (a bug), each in a line
 * of its own that says which it is. Never leaves the server.
 */
export class AdapterCallFailed extends Error {
  constructor(cause: unknown) {
    super('a call of the adapter failed', { cause })
  }
}

/**
 * Makes a call of the adapter's that is typed `void` (`delAll`, `sessionClosed`) and gives what
 * it throws to `failed`: and what it rejects with too, since an `async` method of an adapter of
 * the application's fits that type. For the calls made as a session ends, which must end all
 * the same; a rejection nobody handled could end the process.
 */
export function callGuarded(call: () => unknown, failed: (err: unknown) => void): void {
  try {
    const result = call()
    if (isThenable(result)) result.then(undefined, failed)
  } catch (err) {
    failed(err)
  }
}

export class AdapterFailures {
  /** `sessionOpened` rejected: other nodes may not find those sessions until it is recorded. */
  readonly ownerRecord: BurstLog
  /** `claimSession` rejected: those resumes were told to try again, as for `'retry'`. */
  readonly claim: BurstLog
  /** A claim's `takeOver` failed as the claim was given back: their handoffs may stay in the store. */
  readonly giveBack: BurstLog
  /** `requestHandOff` rejected: those WebSockets are relayed to the node holding the session. */
  readonly ask: BurstLog
  /** `withdrawHandOff` rejected: another node may resume those sessions until their snapshots expire. */
  readonly withdraw: BurstLog
  /** `anotherNode` rejected: those resumes of a draining node's sessions were answered by it. */
  readonly anotherNode: BurstLog
  /**
   * A handshake failed in a call of the adapter's (its `addAll` of a new socket's own room, or
   * a takeover's `takeOver`: see `AdapterCallFailed`): those clients were answered
   * PARLEY_SERVER_SHUTTING_DOWN and try again.
   */
  readonly handshake: BurstLog
  /** `addAll` failed for sockets taken over from another node: they are not in their rooms. */
  readonly rejoin: BurstLog
  /**
   * `del` failed for sockets taken over from another node, of rooms they left there after the
   * freeze: they are still in them here.
   */
  readonly leaveAfterFreeze: BurstLog
  /**
   * `delAll` threw or rejected as a socket ended, or after its joins and leaves then under way
   * (one socket, counted once): the adapter may keep it in its rooms.
   */
  readonly leave: BurstLog
  /** `sessionClosed` threw or rejected: the adapter may keep those sessions' owner records. */
  readonly ownerRecordLeft: BurstLog
  /** `sessionEnded` threw or rejected: a resume of those sessions on another node gets a new session. */
  readonly endedRecord: BurstLog
  /** `endedSession` rejected, or did not answer in time: those resumes got new sessions. */
  readonly endedLookup: BurstLog
  /**
   * A claim's `forwardReply` threw or rejected: those replies of the client's never reach the
   * node that asked, whose questions end at their own timeout, or at `handoff.timeout` after
   * the move with PARLEY_SESSION_MOVED.
   */
  readonly forwardReply: BurstLog

  constructor(log: FastifyBaseLogger) {
    const warn = (message: (count: number) => string) => new BurstLog(log, 'warn', message)
    const error = (message: (count: number) => string) => new BurstLog(log, 'error', message)
    this.ownerRecord = warn(
      (count) =>
        `the adapter could not record the owner of ${count} session(s), since the last such line; requests for them that reach another node may not find them until it does`,
    )
    this.ownerRecordLeft = warn(
      (count) =>
        `the adapter could not remove the owner record of ${count} ended session(s), since the last such line; its store may name this node for them until the records expire`,
    )
    this.endedRecord = warn(
      (count) =>
        `the adapter could not keep how ${count} session(s) ended, since the last such line; a resume of one that reaches another node gets a new session`,
    )
    this.endedLookup = warn(
      (count) =>
        `the adapter could not tell how ${count} resumed session(s) ended, since the last such line; those resumes got new sessions`,
    )
    this.forwardReply = warn(
      (count) =>
        `the adapter could not send ${count} client reply(ies) back to the node that asked, since the last such line; those questions end there at their own timeout, or with ${ErrorCode.SESSION_MOVED} handoff.timeout after the session moved`,
    )
    this.claim = warn(
      (count) =>
        `the adapter could not claim ${count} handed-off session(s), since the last such line; their clients were told to try again (each for at most the recovery window, then given a new session)`,
    )
    this.giveBack = warn(
      (count) =>
        `the adapter could not give back ${count} claimed session(s) this node did not take over, since the last such line; their handoffs may stay in its store until they expire`,
    )
    this.ask = warn(
      (count) =>
        `the adapter could not ask for ${count} session(s), since the last such line; their WebSockets are relayed to the node that holds them`,
    )
    this.withdraw = warn(
      (count) =>
        `the snapshots of ${count} session(s) that did not move could not be withdrawn, since the last such line; another node may resume them until their snapshots expire`,
    )
    this.anotherNode = warn(
      (count) =>
        `the adapter could not name another node for ${count} resume(s) of sessions this node handed off, since the last such line; they were answered here`,
    )
    this.handshake = error(
      (count) =>
        `handshake failed for ${count} client(s) since the last such line: the adapter failed (its addAll of the new socket's own room, or a takeover of a handed-off session; see the err of the first); each got ${ErrorCode.SERVER_SHUTTING_DOWN} '${HANDSHAKE_FAILED}' and tries again`,
    )
    this.rejoin = error(
      (count) =>
        `the adapter could not put ${count} taken-over socket(s) back into their rooms, since the last such line; broadcasts to those rooms miss them`,
    )
    this.leaveAfterFreeze = error(
      (count) =>
        `the adapter could not take ${count} taken-over socket(s) out of rooms they left on their old node after its freeze, since the last such line; broadcasts to those rooms still reach them`,
    )
    this.leave = error(
      (count) =>
        `the adapter could not take ${count} ended socket(s) out of their rooms, since the last such line; it may keep them there`,
    )
  }

  /** The server closes: each logs what it has not logged yet. */
  close(): void {
    this.ownerRecord.close()
    this.claim.close()
    this.giveBack.close()
    this.ask.close()
    this.withdraw.close()
    this.anotherNode.close()
    this.handshake.close()
    this.rejoin.close()
    this.leaveAfterFreeze.close()
    this.leave.close()
    this.ownerRecordLeft.close()
    this.endedRecord.close()
    this.endedLookup.close()
    this.forwardReply.close()
  }
}
