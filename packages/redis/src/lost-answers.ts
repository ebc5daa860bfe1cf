// This node's answers to other nodes' requests that could not be sent: its own connection to Redis
// down or silent while its subscriber, still up, hears their requests. The asking node waits for
// them until its requestTimeout and logs that there; said here too, once per outage, so that an
// operator reading both nodes' logs can tell which side failed.
import type { Warnings } from './warnings.js'

/** What the warning names of the first answer an outage lost. */
export interface LostAnswer {
  /** The node that asked. */
  readonly node: string
  /** The kind of its request (`fetch`, `join`, `leave`, `disconnect`, `ack`, `replied`, `handoff`). */
  readonly request: string
}

/** Whether answers are being lost, and the one line that says so. */
export class LostAnswers {
  readonly #warnings: Warnings
  /** An answer was lost since the last one that went through: the outage is said already. */
  #losing = false

  constructor(warnings: Warnings) {
    this.#warnings = warnings
  }

  /** An answer went through (Redis took its PUBLISH): the outage, if any, is over. */
  sent(): void {
    this.#losing = false
  }

  /**
   * An answer could not be sent (`why`, `code`): said for the first one of an outage only, the
   * rest lost alike until one goes through. A line per answer would be one per request every
   * other node makes meanwhile, which the window of its kind would only hold back.
   */
  lost(answer: LostAnswer, why: string, code: string): void {
    if (this.#losing) return
    this.#losing = true
    this.#warnings.warn(
      'answer-lost',
      `could not answer other nodes' requests: ${why}; the nodes that asked go on without this node's part at their requestTimeout (their fetchSockets lack its sockets, their broadcasts with acks its count and replies); said once until an answer goes through again`,
      { code, node: answer.node, request: answer.request },
    )
  }
}
