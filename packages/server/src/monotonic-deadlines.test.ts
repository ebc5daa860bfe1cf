// The server's own deadlines are judged on the monotonic clock (`performance.now()`), as every
// timer runs: a step of the wall clock (NTP, an operator) must neither end a wait early nor
// stretch it. Fake timers move the monotonic clock and the timers together; `vi.setSystemTime`
// steps the wall clock alone. What the application or another node reads as a date
// (`handshake.issued`) stays on the wall clock.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { ExpiringSet } from './expiring-set.js'
import { RecentSessions } from './recent-sessions.js'
import { WaitThenCut } from './wait-then-cut.js'

/** An hour: far past every wait below. */
const STEP_MS = 60 * 60 * 1000

describe('deadlines under a step of the wall clock', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] })
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('keeps what happened to a session for its ttl when the wall clock steps past it', () => {
    const recent = new RecentSessions<string>(60_000, 10)
    recent.add('a', 'moved away')
    vi.advanceTimersByTime(30_000)
    vi.setSystemTime(Date.now() + STEP_MS)
    // Added after the step, another is kept as long, and does not drop the first as expired.
    recent.add('b', 'moved away')
    expect(recent.get('a')).toBe('moved away')
    vi.advanceTimersByTime(29_999)
    expect(recent.get('a')).toBe('moved away')
    vi.advanceTimersByTime(1)
    expect(recent.get('a')).toBeUndefined()
    expect(recent.get('b')).toBe('moved away')
    vi.advanceTimersByTime(30_000)
    expect(recent.get('b')).toBeUndefined()
  })

  it('forgets what happened to a session at its ttl when the wall clock steps back', () => {
    const recent = new RecentSessions<string>(60_000, 10)
    recent.add('a', 'moved away')
    vi.setSystemTime(Date.now() - STEP_MS)
    vi.advanceTimersByTime(60_000)
    expect(recent.get('a')).toBeUndefined()
    expect(recent.size).toBe(0)
  })

  it('keeps a key of an ExpiringSet for its lifetime when the wall clock steps past it', () => {
    const set = new ExpiringSet(5000, 10)
    set.add('owner-b')
    vi.setSystemTime(Date.now() + STEP_MS)
    expect(set.has('owner-b')).toBe(true)
    // An add after the step does not drop it as expired.
    set.add('owner-c')
    expect(set.has('owner-b')).toBe(true)
    vi.advanceTimersByTime(5000)
    expect(set.has('owner-b')).toBe(false)
  })

  it('forgets a key of an ExpiringSet at its lifetime when the wall clock steps back', () => {
    const set = new ExpiringSet(5000, 10)
    set.add('owner-b')
    vi.setSystemTime(Date.now() - STEP_MS)
    vi.advanceTimersByTime(5000)
    expect(set.has('owner-b')).toBe(false)
  })

  /** A WaitThenCut with one item ending, behind a wait (`after`) the test settles. */
  function waitingBehindALookup() {
    const cut: string[] = []
    const closing = new WaitThenCut<string>((item) => cut.push(item))
    let found = () => {}
    closing.after(
      new Promise<void>((resolve) => {
        found = resolve
      }),
      60_000,
    )
    closing.add('deaf')
    return { closing, cut, found }
  }

  it("gives what is ending its whole moment when the wall clock steps during the close's first wait", async () => {
    const { closing, cut, found } = waitingBehindALookup()
    const closed = closing.closeAll(2000, 3000)
    await vi.advanceTimersByTimeAsync(500)
    vi.setSystemTime(Date.now() + STEP_MS)
    found()
    await vi.advanceTimersByTimeAsync(1999)
    expect(cut).toEqual([])
    await vi.advanceTimersByTimeAsync(1)
    expect(cut).toEqual(['deaf'])
    await closed
  })

  it('cuts what is ending within the room the close has when the wall clock steps back meanwhile', async () => {
    const { closing, cut, found } = waitingBehindALookup()
    const closed = closing.closeAll(2000, 1500)
    await vi.advanceTimersByTimeAsync(1000)
    vi.setSystemTime(Date.now() - STEP_MS)
    found()
    await vi.advanceTimersByTimeAsync(499)
    expect(cut).toEqual([])
    await vi.advanceTimersByTimeAsync(1)
    expect(cut).toEqual(['deaf'])
    await closed
  })
})
