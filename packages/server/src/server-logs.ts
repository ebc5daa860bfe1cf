import { ErrorCode, type TransportName } from '@parley/protocol'
import type { FastifyBaseLogger } from 'fastify'
import { HANDSHAKE_FAILED } from './adapter-failures.js'
import { BurstLog } from './burst-log.js'

/**
 * What the server logs itself that belongs to none of its parts: each kind in one line per burst
 * (see `BurstLog`), since a client, a bug or a node that is gone can bring it to every session.
 */
export class ServerLogs {
  /**
   * Sessions ended because their clients sent what does not decode. A client can have that happen
   * as often as it opens sessions: one line per burst with how many and the first one's reason,
   * not one per session; `parley_disconnects_total` counts each.
   */
  readonly invalidSessions: BurstLog<{ code: string; reason: string }>
  /** Handshakes that failed inside the server, not in the adapter (a bug). */
  readonly handshakeBugs: BurstLog<{ err: unknown; transport: TransportName }>
  /** Goodbyes sent on that the live node picked for them did not take. */
  readonly goodbyesUnsent: BurstLog<{ err: unknown; node: string }>

  constructor(log: FastifyBaseLogger) {
    this.goodbyesUnsent = new BurstLog(
      log,
      'warn',
      (count) =>
        `${count} goodbye(s) of sessions handed off by a node that is gone could not be sent on to the live node picked for them since the last such line (not reached, or it answered with a 5xx status); each was sent on to the next live node, if there was one`,
    )
    this.invalidSessions = new BurstLog(
      log,
      'warn',
      (count, first) =>
        `closed ${count} session(s) for invalid packets since the last such line; the first: ${first?.code}: ${first?.reason}`,
    )
    this.handshakeBugs = new BurstLog(
      log,
      'error',
      (count) =>
        `handshake failed for ${count} client(s) since the last such line, with an error inside the server that is not the adapter's (a bug: see the err of the first); each got ${ErrorCode.SERVER_SHUTTING_DOWN} '${HANDSHAKE_FAILED}' and tries again`,
    )
  }

  /** The server closes: each logs what it has not logged yet. */
  close(): void {
    this.invalidSessions.close()
    this.handshakeBugs.close()
    this.goodbyesUnsent.close()
  }
}
