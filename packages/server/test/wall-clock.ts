import { vi } from 'vitest'

/**
 * Steps the wall clock (`Date.now()`) by `ms` from now on, as NTP or an operator does, while the
 * monotonic clock and the timers run on as they are: for the suites on real sockets or a real
 * Redis, which fake timers would stop. `vi.restoreAllMocks()` takes the step back.
 */
export function stepWallClock(ms: number): void {
  const wall = Date.now.bind(Date)
  vi.spyOn(Date, 'now').mockImplementation(() => wall() + ms)
}
