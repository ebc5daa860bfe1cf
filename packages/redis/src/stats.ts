// What could not cross nodes, counted for `adapter.stats` and said in a warning as it happens:
// each count goes with its line, in one place.
import type { Warnings } from './warnings.js'

/** What went wrong across nodes since the adapter started. Read-only: `adapter.stats`. */
export interface RedisAdapterStats {
  /**
   * Broadcasts (with or without acks) that reached this node's sockets but could not be
   * published to the other nodes: Redis was unreachable.
   */
  readonly lostBroadcasts: number
  /**
   * Cluster queries (`fetchSockets`, `socketsJoin`, `socketsLeave`, `disconnectSockets`) that
   * could not be sent, that a live node did not answer within `requestTimeout`, or that a node
   * dropped out of the live set before answering without saying goodbye (its heartbeat record
   * lapsed: it may still hold sockets): their result holds only the nodes that answered. Not a
   * node that said goodbye: its sockets went with it. Also broadcasts with acks that a live node
   * did not count its sockets for within `requestTimeout`, or that a node dropped out of the live
   * set before counting without saying goodbye: that node counts as none.
   */
  readonly incompleteRequests: number
  /**
   * Replies of other nodes' sockets to this node's broadcasts with acks that were made there
   * and lost by Redis on their way here: each counts as a failed reply
   * (`PARLEY_REDIS_REPLY_LOST`) once that node says it made it.
   */
  readonly lostReplies: number
  /**
   * Clients' replies to another node's questions, made here to a session this node took over
   * from it, that could not be sent back to that node: Redis was unreachable. Its question
   * ends at its own limits.
   */
  readonly lostRepliesSentBack: number
}

/** The counts of `RedisAdapterStats`, and the warnings that go with three of them. */
export class Losses {
  readonly #counts = { lostBroadcasts: 0, incompleteRequests: 0, lostReplies: 0, lostRepliesSentBack: 0 }
  readonly #warnings: Warnings

  constructor(warnings: Warnings) {
    this.#warnings = warnings
  }

  /** A copy, read-only. */
  stats(): RedisAdapterStats {
    return { ...this.#counts }
  }

  /**
   * One more request left incomplete: the count now, for the warning the caller writes (a
   * query and a broadcast with acks each say what went unanswered in their own words).
   */
  incomplete(): number {
    return ++this.#counts.incompleteRequests
  }

  /** `lost` replies of node `node`'s sockets that Redis lost: counted and logged. */
  lostReplies(node: string, lost: number): void {
    if (lost === 0) return
    this.#counts.lostReplies += lost
    this.#warnings.warn(
      'lost-reply',
      `Redis lost ${lost} reply(ies) of the sockets of node ${node} to a broadcast with acks; they count as failed`,
      { lostReplies: this.#counts.lostReplies },
    )
  }

  /** A broadcast reached this node's sockets and could not be published: counted and logged. */
  lostBroadcast(why: string): void {
    this.#counts.lostBroadcasts++
    this.#warnings.warn('lost-broadcast', `a broadcast could not reach the other nodes: ${why}`, {
      lostBroadcasts: this.#counts.lostBroadcasts,
    })
  }

  /**
   * A client's reply to node `node`'s question could not be sent back there: counted and
   * logged.
   */
  lostReplySentBack(node: string, why: string): void {
    this.#counts.lostRepliesSentBack++
    this.#warnings.warn(
      'lost-reply-sent-back',
      `a client's reply could not be sent back to node ${node}: ${why}`,
      {
        lostRepliesSentBack: this.#counts.lostRepliesSentBack,
      },
    )
  }
}
