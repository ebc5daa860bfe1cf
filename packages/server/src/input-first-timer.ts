import { MAX_TIMER_MS } from '@parley/protocol'

/**
 * A one-off deadline whose verdict waits two turns of the event loop after its timer ran
 * (`setImmediate` twice), as `TimerQueue`'s do, for a deadline of its own rather than one of
 * many sharing a delay (a session's recovery window, which an adopted session starts with what
 * was left of its client's; a connection's lingering close; a close's wait for last words; the
 * grace of a gap in a client's numbers).
 *
 * After a stall of the event loop (a long synchronous task, a major GC, a debugger's pause) Node
 * runs the timers that ran out meanwhile before it reads the input that came meanwhile: a
 * resume, a GET or a client's end that arrived in time would lose to a deadline that ran out
 * only because the server did not look. The first turn reads what came on open connections and
 * accepts those opened meanwhile, the second reads their requests (see `TimerQueue`); a verdict
 * that input made moot is then cleared before it fires. With no such input, it fires those
 * turns (well under a millisecond) later.
 *
 * No closure is made per deadline: the timer and the turns are given the instance.
 */
export class InputFirstTimer {
  readonly #fire: () => void
  readonly #unref: boolean
  #timer: NodeJS.Timeout | undefined
  #turn: NodeJS.Immediate | undefined
  /** Its timer stopped by `setAside`: `fireNow` still runs its verdict. */
  #setAside = false

  /**
   * Calls `fire` `ms` after now (at most MAX_TIMER_MS: past it a Node timer runs after 1 ms),
   * then two turns, unless `clear` was called first. `unref`: the deadline holds no process up.
   */
  constructor(ms: number, fire: () => void, unref = false) {
    this.#fire = fire
    this.#unref = unref
    this.#start(ms)
  }

  #start(ms: number): void {
    this.#timer = setTimeout(InputFirstTimer.#ran, Math.min(Math.max(0, ms), MAX_TIMER_MS), this)
    if (this.#unref) this.#timer.unref()
  }

  /** Cancels it; nothing fires after (safe to call twice, or after it fired). */
  clear(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    clearImmediate(this.#turn)
    this.#turn = undefined
    this.#setAside = false
  }

  /**
   * Stops its timer, as `clear`, but for `fireNow`, which still runs its verdict: a deadline that
   * does not run while its owner waits on something else, and whose verdict that owner may find
   * due by its own clock meanwhile (a session frozen for a handoff whose client was away: see
   * `Session.endIfWindowSpent`). Nothing when it fired or was cleared.
   */
  setAside(): void {
    if (this.#timer === undefined && this.#turn === undefined) return
    this.clear()
    this.#setAside = true
  }

  /**
   * Runs a timer `setAside` stopped again, its verdict `ms` from now (then its two turns), as
   * one made then would: for an owner back from what it waited on, whose deadline still stands
   * (a session thawed after a handoff given up on, its client away: see `Session.thaw`). Returns
   * false, nothing done, when it was not set aside (it fired, was cleared, or runs).
   */
  resume(ms: number): boolean {
    if (!this.#setAside) return false
    this.#setAside = false
    this.#start(ms)
    return true
  }

  /**
   * Fires now, unless it fired or was cleared: for a deadline found past by another way (its
   * timer due, or its turns under way, or set aside) whose verdict cannot wait for them.
   */
  fireNow(): void {
    if (this.#timer === undefined && this.#turn === undefined && !this.#setAside) return
    this.clear()
    this.#fire()
  }

  static #ran(self: InputFirstTimer): void {
    self.#timer = undefined
    self.#turn = setImmediate(InputFirstTimer.#secondTurn, self)
    if (self.#unref) self.#turn.unref()
  }

  static #secondTurn(self: InputFirstTimer): void {
    self.#turn = setImmediate(InputFirstTimer.#due, self)
    if (self.#unref) self.#turn.unref()
  }

  static #due(self: InputFirstTimer): void {
    self.#turn = undefined
    self.#fire()
  }
}
