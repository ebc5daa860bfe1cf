import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { InputFirstTimer } from './input-first-timer.js'

// The timer and the clock are faked; the turns after it ran (setImmediate) are real, as in
// timer-queue.test.ts.
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] })
})

afterEach(() => {
  vi.useRealTimers()
})

const immediate = setImmediate
const turn = () => new Promise((resolve) => immediate(resolve))

describe('InputFirstTimer', () => {
  it('fires two turns of the event loop after its time ran out, not before', async () => {
    let fired = 0
    new InputFirstTimer(100, () => fired++)
    vi.advanceTimersByTime(99)
    await turn()
    await turn()
    expect(fired).toBe(0)
    vi.advanceTimersByTime(1)
    expect(fired).toBe(0)
    await turn()
    expect(fired).toBe(0)
    await turn()
    expect(fired).toBe(1)
  })

  it('does not fire once cleared, even in the turns after its time ran out (input read in them)', async () => {
    let fired = 0
    const timer = new InputFirstTimer(100, () => fired++)
    vi.advanceTimersByTime(100)
    await turn()
    timer.clear()
    await turn()
    await turn()
    expect(fired).toBe(0)
    timer.clear()
    const early = new InputFirstTimer(100, () => fired++)
    early.clear()
    vi.advanceTimersByTime(200)
    await turn()
    await turn()
    expect(fired).toBe(0)
  })

  it('fires once when made to fire now, in its turns or before, and not after it fired or was cleared', async () => {
    let fired = 0
    const due = new InputFirstTimer(100, () => fired++)
    vi.advanceTimersByTime(100)
    due.fireNow()
    expect(fired).toBe(1)
    await turn()
    await turn()
    await turn()
    expect(fired).toBe(1)
    due.fireNow()
    expect(fired).toBe(1)
    const early = new InputFirstTimer(100, () => fired++)
    early.fireNow()
    vi.advanceTimersByTime(200)
    await turn()
    await turn()
    expect(fired).toBe(2)
    const cleared = new InputFirstTimer(100, () => fired++)
    cleared.clear()
    cleared.fireNow()
    expect(fired).toBe(2)
  })

  it('set aside, fires only when made to fire now, once; cleared or fired, it is not set aside', async () => {
    let fired = 0
    const aside = new InputFirstTimer(100, () => fired++)
    aside.setAside()
    vi.advanceTimersByTime(200)
    await turn()
    await turn()
    expect(fired).toBe(0)
    aside.fireNow()
    aside.fireNow()
    expect(fired).toBe(1)
    const cleared = new InputFirstTimer(100, () => fired++)
    cleared.setAside()
    cleared.clear()
    cleared.fireNow()
    const done = new InputFirstTimer(100, () => fired++)
    done.fireNow()
    done.setAside()
    done.fireNow()
    expect(fired).toBe(2)
  })

  it('set aside, runs again when resumed, for the time given, once; not resumed when not set aside', async () => {
    let fired = 0
    const aside = new InputFirstTimer(100, () => fired++)
    vi.advanceTimersByTime(50)
    aside.setAside()
    vi.advanceTimersByTime(500)
    expect(aside.resume(30)).toBe(true)
    expect(aside.resume(30)).toBe(false)
    vi.advanceTimersByTime(29)
    await turn()
    await turn()
    expect(fired).toBe(0)
    vi.advanceTimersByTime(1)
    await turn()
    await turn()
    expect(fired).toBe(1)
    const running = new InputFirstTimer(100, () => fired++)
    expect(running.resume(1000)).toBe(false)
    vi.advanceTimersByTime(100)
    await turn()
    await turn()
    expect(fired).toBe(2)
    const cleared = new InputFirstTimer(100, () => fired++)
    cleared.setAside()
    cleared.clear()
    expect(cleared.resume(0)).toBe(false)
    vi.advanceTimersByTime(200)
    await turn()
    await turn()
    expect(fired).toBe(2)
  })
})
