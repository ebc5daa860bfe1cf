import type { FastifyBaseLogger } from 'fastify'
import { BurstLog } from './burst-log.js'

/**
 * What this node logs about sessions handed off with something lost, by it or to it: each kind
 * in one line per burst (see `BurstLog`), since a drain hands many off at once and their clients
 * come back together. A line names the socket of the first it counts.
 */
export class HandoffLogs {
  /** Handed off by this node with a `socket.data` that is not plain JSON: the next node starts from {}. */
  readonly unplainData: BurstLog
  /**
   * Handed off by a node that drained with no other node alive: nothing could claim them before
   * this node started, whatever handoff.timeout. What is lost is what a restart loses.
   */
  readonly restarted: BurstLog
  /**
   * Claimed after handoff.timeout: the old node had given up on a claim and stopped taking
   * their packets. Raising handoff.timeout is what helps.
   */
  readonly late: BurstLog
  /** The old node did not seal their tails (gone, or its store away): what it sent last may be lost. */
  readonly incomplete: BurstLog
  /**
   * Claimed, but their snapshots (the first's `err` says why) or their tails (packets that do
   * not follow the snapshot's numbers) could not be restored: their clients start anew. A node
   * of another version or a store that garbles what it keeps brings it to every session at once.
   */
  readonly unrestorable: BurstLog
  /**
   * Claimed by this node only after it had closed (the store answered the claim after the
   * drain stopped waiting for it, `handoff.timeout`): given back, their clients start anew.
   */
  readonly afterClose: BurstLog

  constructor(log: FastifyBaseLogger) {
    this.unplainData = new BurstLog(
      log,
      'warn',
      (count) =>
        `${count} session(s) handed off whose socket.data is not plain JSON, since the last such line; the node that takes each over starts from {}`,
    )
    this.restarted = new BurstLog(
      log,
      'info',
      (count) =>
        `${count} session(s) claimed after a restart since the last such line (the node that handed them off was the only one alive); what was sent to each between that node closing and its claim is lost`,
    )
    this.late = new BurstLog(
      log,
      'warn',
      (count) =>
        `${count} session(s) claimed after the node that handed them off stopped waiting (handoff.timeout), since the last such line; what was sent to each in between is lost`,
    )
    this.incomplete = new BurstLog(
      log,
      'warn',
      (count) =>
        `${count} session(s) taken over from a node that did not seal their tail, since the last such line; what it sent them last may be lost`,
    )
    this.unrestorable = new BurstLog(
      log,
      'warn',
      (count) =>
        `${count} handed-off session(s) could not be restored (a snapshot, or a tail out of order; the first's err says which), since the last such line; each client starts anew`,
    )
    this.afterClose = new BurstLog(
      log,
      'warn',
      (count) =>
        `${count} session(s) claimed by this node only after it had closed (the store answered after handoff.timeout), since the last such line; given back, each client starts anew`,
    )
  }

  /** The server closes: each logs what it has not logged yet. */
  close(): void {
    this.unplainData.close()
    this.restarted.close()
    this.late.close()
    this.incomplete.close()
    this.unrestorable.close()
    this.afterClose.close()
  }
}
