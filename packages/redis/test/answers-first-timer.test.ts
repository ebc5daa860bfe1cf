import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { AnswersFirstTimer } from '../src/answers-first-timer.js'

// The timer is faked; the turn after it ran (setImmediate) is real, as in the server's
// input-first-timer.test.ts.
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
})

afterEach(() => {
  vi.useRealTimers()
})

const turn = () => new Promise((resolve) => setImmediate(resolve))

describe('AnswersFirstTimer', () => {
  it('fires one turn of the event loop after its time ran out, not before', async () => {
    let fired = 0
    new AnswersFirstTimer(100, () => fired++)
    vi.advanceTimersByTime(99)
    await turn()
    expect(fired).toBe(0)
    vi.advanceTimersByTime(1)
    expect(fired).toBe(0)
    await turn()
    expect(fired).toBe(1)
    await turn()
    expect(fired).toBe(1)
  })

  it('does not fire once cleared, even in the turn after its time ran out (an answer read in it)', async () => {
    let fired = 0
    const timer = new AnswersFirstTimer(100, () => fired++, true)
    vi.advanceTimersByTime(100)
    timer.clear()
    await turn()
    await turn()
    expect(fired).toBe(0)
    timer.clear()
    const early = new AnswersFirstTimer(100, () => fired++)
    early.clear()
    vi.advanceTimersByTime(200)
    await turn()
    expect(fired).toBe(0)
  })
})
