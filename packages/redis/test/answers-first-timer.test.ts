import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { AnswersFirstTimer, withinAnswersFirst } from '../src/answers-first-timer.js'

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

describe('withinAnswersFirst', () => {
  it("takes the promise's value when it settles in the turn after the bound ran out", async () => {
    let answer: ((value: string) => void) | undefined
    const answered = withinAnswersFirst(new Promise<string>((resolve) => (answer = resolve)), 100, 'late')
    vi.advanceTimersByTime(100)
    // Read in the turn's poll phase, before its check phase gives the verdict.
    answer?.('answer')
    expect(await answered).toBe('answer')
  })

  it('gives the fallback a turn after the bound, and for a rejection', async () => {
    const never = withinAnswersFirst(new Promise<string>(() => {}), 100, 'late')
    const seen: string[] = []
    void never.then((value) => seen.push(value))
    vi.advanceTimersByTime(100)
    await Promise.resolve()
    expect(seen).toEqual([])
    await turn()
    expect(seen).toEqual(['late'])
    expect(await withinAnswersFirst(Promise.reject(new Error('refused')), 100, 'refused')).toBe('refused')
  })
})
