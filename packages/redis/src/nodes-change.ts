import { argumentError } from '@parley/server'
import { RedisErrorCode } from './send.js'
import type { Warnings } from './warnings.js'

/**
 * What a listener of `RedisAdapter.onNodesChange` is told: the set of the other live nodes
 * changed. This node is never in it: its own start, close or return after an outage is no change.
 */
export interface NodesChange {
  /** The other live nodes now: what `liveNodes` reads from now on. */
  readonly nodes: readonly string[]
  /**
   * Live now and not at the last change: a node that started, or one whose record had lapsed
   * and that beats again (it was cut off from Redis, or stalled, and is back).
   */
  readonly joined: readonly string[]
  /**
   * Nodes that closed and said so: their sessions went with their drain, or ended. Heard as they
   * say it, or read at the next heartbeat that goes through from the mark their goodbye left in
   * Redis (kept a day: see `GOODBYE_MARK_MS` in nodes.ts).
   */
  readonly left: readonly string[]
  /**
   * Nodes whose record lapsed (no heartbeat for three intervals) without a goodbye: killed,
   * crashed, or cut off from Redis, and then perhaps alive (see "Session owners"). A goodbye
   * this node missed counts here only when its mark is not in Redis when read: written by a node
   * of an earlier version (or none), refused, lost with Redis' data, or expired (this node's own
   * heartbeats failing for more than a day).
   */
  readonly lapsed: readonly string[]
}

/** A listener of `RedisAdapter.onNodesChange`; what it returns (a promise) is awaited for its failure only. */
export type NodesChangeListener = (change: NodesChange) => void

/**
 * The application's listeners of changes to the live set. Each is told in the order added; one
 * that throws or rejects is logged (`PARLEY_REDIS_LISTENER_FAILED`) and the others are told all
 * the same: a listener's bug must not stop the heartbeat it runs in.
 */
export class NodesListeners {
  /** One entry per `add`, so that the same function added twice is removed once per call. */
  readonly #entries = new Set<{ listener: NodesChangeListener }>()
  readonly #warnings: Warnings
  #closed = false

  constructor(warnings: Warnings) {
    this.#warnings = warnings
  }

  /** Adds `listener`; returns what removes it (once; a second call does nothing). */
  add(listener: unknown): () => void {
    if (typeof listener !== 'function') {
      throw argumentError(
        `@parley/redis: the listener of onNodesChange must be a function, not ${listener === null ? 'null' : typeof listener}`,
      )
    }
    // Closed: nothing is told any more, and nothing is kept.
    if (this.#closed) return () => {}
    const entry = { listener: listener as NodesChangeListener }
    this.#entries.add(entry)
    return () => {
      this.#entries.delete(entry)
    }
  }

  /** Tells every listener; never throws. */
  tell(change: NodesChange): void {
    // A listener that adds or removes one while it is told: those of this moment are told.
    for (const entry of [...this.#entries]) {
      if (!this.#entries.has(entry)) continue
      // A copy each: one listener that changes its arrays does not change another's.
      const own: NodesChange = {
        nodes: [...change.nodes],
        joined: [...change.joined],
        left: [...change.left],
        lapsed: [...change.lapsed],
      }
      try {
        const result: unknown = entry.listener(own)
        // Read as a promise only when it is one: a thenable whose `then` throws rejects here too.
        if (result !== undefined) Promise.resolve(result).catch((err: unknown) => this.#failed(err))
      } catch (err) {
        this.#failed(err)
      }
    }
  }

  /** The adapter closed: no listener is told again. */
  close(): void {
    this.#closed = true
    this.#entries.clear()
  }

  #failed(err: unknown): void {
    this.#warnings.warn(
      'nodes-change',
      `an onNodesChange listener threw or rejected (${RedisErrorCode.LISTENER_FAILED}); the other listeners were told, and the adapter goes on: fix the listener, its err says where`,
      { code: RedisErrorCode.LISTENER_FAILED, err },
    )
  }
}
