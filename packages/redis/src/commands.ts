import type { RedisClient } from './options.js'
import { RedisUnreachableError, send } from './send.js'

/**
 * The most commands left unanswered at once: past that, Redis is connected but not answering,
 * and more would only pile up in the connection (memory, then a late burst).
 */
export const MAX_UNANSWERED_COMMANDS = 1000

/**
 * @deprecated The bound holds for every command the adapter sends, not PUBLISHes only: use
 * `MAX_UNANSWERED_COMMANDS`, the same number.
 */
export const MAX_UNANSWERED_PUBLISHES = MAX_UNANSWERED_COMMANDS

/**
 * Every command the adapter sends on the application's client, with one bound for all of them.
 * node-redis never gives up a command by itself: while Redis is away it queues them offline,
 * and while Redis is connected but answers nothing (stopped, blocked, cut off without a reset)
 * it holds every command written to the connection until Redis answers. Here a command is not
 * sent at all while Redis is not connected, or has left a command unanswered for `timeout`
 * (or `MAX_UNANSWERED_COMMANDS` of them); one that is sent is waited for at most `timeout`.
 * Either way the caller hears a `RedisUnreachableError` and decides: skip and catch up later,
 * count a broadcast as lost, or answer without Redis.
 */
export class Commands {
  /** Commands sent and not answered yet, oldest first: when each was sent. */
  readonly #unanswered = new Set<{ at: number }>()

  constructor(
    readonly client: RedisClient,
    /** `requestTimeout`: the longest wait for any one answer. */
    readonly timeout: number,
  ) {}

  /** Why a command would not be answered now, or undefined when one may go. */
  unavailable(): string | undefined {
    if (!this.client.isReady) return 'not connected'
    const oldest = this.#unanswered.values().next().value
    const waited = oldest ? Date.now() - oldest.at : 0
    if (this.#unanswered.size >= MAX_UNANSWERED_COMMANDS || waited >= this.timeout) {
      return `it has left ${this.#unanswered.size} command(s) unanswered for up to ${waited} ms`
    }
    return undefined
  }

  /**
   * Sends `args` and resolves with Redis' answer, or rejects with the error Redis gave. Rejects
   * with `RedisUnreachableError` at once when `unavailable()`, and when no answer came within
   * `ms` (at most `timeout`, its default). A command given up may still run later, once Redis
   * answers again: callers send this way only what is harmless late, or undo it.
   */
  send(args: string[], ms = this.timeout): Promise<unknown> {
    const why = this.unavailable()
    if (why !== undefined) return Promise.reject(new RedisUnreachableError(why))
    return this.#sent(args, ms)
  }

  /**
   * Sends `args` while Redis is connected, answering or not, and waits for its answer at most
   * `timeout`: what undoes a command given up must run right behind it on the connection,
   * whenever Redis runs that one. Rejects with `RedisUnreachableError` at once when not
   * connected (a command given up then may or may not have run: nothing can follow it now).
   */
  sendBehind(args: string[]): Promise<unknown> {
    if (!this.client.isReady) return Promise.reject(new RedisUnreachableError('not connected'))
    return this.#sent(args, this.timeout)
  }

  #sent(args: string[], ms: number): Promise<unknown> {
    const entry = { at: Date.now() }
    this.#unanswered.add(entry)
    return new Promise((resolve, reject) => {
      const wait = Math.min(ms, this.timeout)
      const timer = setTimeout(
        () => reject(new RedisUnreachableError(`no answer to ${args[0]} within ${wait} ms`)),
        wait,
      )
      timer.unref()
      send(this.client, args).then(
        (value) => {
          clearTimeout(timer)
          this.#unanswered.delete(entry)
          resolve(value)
        },
        (err: unknown) => {
          clearTimeout(timer)
          this.#unanswered.delete(entry)
          reject(err)
        },
      )
    })
  }
}
