import { MAX_TIMER_MS } from '@parley/protocol'

/**
 * A bound whose verdict waits one turn of the event loop after its timer ran (`setImmediate`),
 * for the bounds on what comes over this node's own Redis connections: another node's count or
 * answer on the subscriber, a command's answer on the client (a takeover's tail read, a claim's
 * confirm).
 *
 * After a stall of this node's thread (a long synchronous task, a major GC, a debugger's pause)
 * past the bound, Node runs the timers that ran out meanwhile before it reads the sockets: an
 * answer that came in time, waiting in one of them, would lose to a bound that ran out only
 * because this node did not look. The turn's poll phase reads it before its check phase gives
 * the verdict. One turn is enough: these connections were open before any stall (the server's
 * deadlines wait two, for requests on connections accepted during one). With no such answer, the
 * verdict comes that turn (well under a millisecond) later.
 *
 * Bounds set at the same timeout keep their order: their timers run in the order they were set,
 * and so do their turns. No closure is made per bound: the timer and the turn are given the
 * instance.
 */
export class AnswersFirstTimer {
  readonly #fire: () => void
  readonly #unref: boolean
  #timer: NodeJS.Timeout | undefined
  #turn: NodeJS.Immediate | undefined

  /**
   * Calls `fire` `ms` after now (at most MAX_TIMER_MS: past it a Node timer runs after 1 ms), then
   * a turn, unless `clear` was called first. `unref`: the bound holds no process open (one that
   * no caller awaits: the application closes as it sees fit).
   */
  constructor(ms: number, fire: () => void, unref = false) {
    this.#fire = fire
    this.#unref = unref
    this.#timer = setTimeout(AnswersFirstTimer.#ran, Math.min(Math.max(0, ms), MAX_TIMER_MS), this)
    if (unref) this.#timer.unref()
  }

  /** Cancels it; nothing fires after (safe to call twice, or after it fired). */
  clear(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    clearImmediate(this.#turn)
    this.#turn = undefined
  }

  static #ran(self: AnswersFirstTimer): void {
    self.#timer = undefined
    self.#turn = setImmediate(AnswersFirstTimer.#due, self)
    if (self.#unref) self.#turn.unref()
  }

  static #due(self: AnswersFirstTimer): void {
    self.#turn = undefined
    self.#fire()
  }
}

/**
 * `promise`'s value, or `fallback` once `ms` passed, the verdict given as `AnswersFirstTimer`
 * gives it: what settles `promise`, read on this node's connections during a stall of its
 * thread past `ms`, wins. A rejection becomes `fallback` too.
 */
export function withinAnswersFirst<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  return new Promise((resolve) => {
    const bound = new AnswersFirstTimer(ms, () => resolve(fallback))
    promise.then(
      (value) => {
        bound.clear()
        resolve(value)
      },
      () => {
        bound.clear()
        resolve(fallback)
      },
    )
  })
}
