// `until` bounds its wait on the monotonic clock: a test that steps the wall clock (as NTP or an
// operator does) while it waits neither ends the wait at once nor stretches it past its bound.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { until, within } from './helpers.js'
import { stepWallClock } from './wall-clock.js'

afterEach(() => {
  vi.restoreAllMocks()
})

describe('until', () => {
  it('waits on for its condition when the wall clock steps an hour ahead meanwhile', async () => {
    let met = false
    setTimeout(() => {
      met = true
    }, 50)
    const waiting = until(() => met, 3000, 'the condition met after the step')
    stepWallClock(60 * 60 * 1000)
    await expect(within(waiting, 5000, 'until')).resolves.toBeUndefined()
  })

  it('gives up at its bound when the wall clock steps an hour back meanwhile', async () => {
    const waiting = until(() => false, 50, 'a condition never met')
    stepWallClock(-60 * 60 * 1000)
    await expect(within(waiting, 5000, 'until')).rejects.toThrow(
      'timed out waiting for a condition never met',
    )
  })
})
