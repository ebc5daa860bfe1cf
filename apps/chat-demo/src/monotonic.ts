/**
 * The chat's clock for deadlines and windows (rate limits, waits, claims), in ms since the epoch:
 * the wall clock as it was when this process started, plus the time the monotonic clock has run
 * since. A step of the wall clock (NTP, an operator) moves none of them: stepped ahead, it would
 * end a wait at once or forgive a rate limit's window; stepped back, stretch both by the step.
 * The times shown to people (a message's `at`) stay on the wall clock.
 *
 * Two processes agree on it as far as their wall clocks did when each started: a time that
 * another node wrote (a window handed over with its session) may lie ahead of this node's, and
 * whoever reads one bounds how far ahead it is taken to be (see `RateLimit`, `MessageOrder`).
 */
export function monotonicNow(): number {
  return performance.timeOrigin + performance.now()
}
