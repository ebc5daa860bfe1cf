/**
 * The moment by which Parley's preClose hook must be over: Fastify gives a hook `hookLimit` ms
 * (its `pluginTimeout`, 0 for no bound) before it gives up on it, less `marginMs` to end in.
 * Measured on the monotonic clock (`performance.now()`), as Fastify's own bound is a timer: a
 * step of the wall clock (NTP, an operator) during the close must neither leave its waits no
 * time at all (WebSockets cut before their clients answer, last words not waited for) nor let
 * them run past Fastify's bound.
 */
export class CloseDeadline {
  /** When the hook's time is up (`performance.now()` ms); `Infinity` with no bound. */
  readonly #at: number

  constructor(hookLimit: number, marginMs: number) {
    this.#at = hookLimit > 0 ? performance.now() + hookLimit - marginMs : Number.POSITIVE_INFINITY
  }

  /** The ms left until then: 0 or less once it passed, `Infinity` with no bound. */
  left(): number {
    return this.#at - performance.now()
  }
}
