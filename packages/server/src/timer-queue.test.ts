import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { Timed, TimerQueue } from './timer-queue.js'

beforeEach(() => {
  vi.useFakeTimers()
})

afterEach(() => {
  vi.useRealTimers()
})

/** An owner of deadlines, as a session is: its own entry in the queues. */
class Named extends Timed {
  constructor(readonly name: string) {
    super()
  }
}

describe('TimerQueue', () => {
  it('fires each entry delay ms after it was added, in order, under one timer', () => {
    const fired: string[] = []
    const queue = new TimerQueue<Named>(100, (entry) => fired.push(entry.name))
    queue.add(new Named('a'))
    vi.advanceTimersByTime(30)
    queue.add(new Named('b'))
    queue.add(new Named('c'))
    expect(vi.getTimerCount()).toBe(1)
    vi.advanceTimersByTime(69)
    expect(fired).toEqual([])
    vi.advanceTimersByTime(1)
    expect(fired).toEqual(['a'])
    vi.advanceTimersByTime(29)
    expect(fired).toEqual(['a'])
    vi.advanceTimersByTime(1)
    expect(fired).toEqual(['a', 'b', 'c'])
    expect(vi.getTimerCount()).toBe(0)
  })

  it('forgets a cancelled entry, and lets its timer go when nothing is left', () => {
    const fired: string[] = []
    const queue = new TimerQueue<Named>(100, (entry) => fired.push(entry.name))
    const a = new Named('a')
    const b = new Named('b')
    queue.add(a)
    queue.add(b)
    a.leaveQueue()
    vi.advanceTimersByTime(100)
    expect(fired).toEqual(['b'])
    queue.add(a)
    a.leaveQueue()
    expect(vi.getTimerCount()).toBe(0)
    vi.advanceTimersByTime(1000)
    expect(fired).toEqual(['b'])
  })

  it('moves an entry added again, or added to another queue, to its new deadline', () => {
    const fired: string[] = []
    const short = new TimerQueue<Named>(50, (entry) => fired.push(`short ${entry.name}`))
    const long = new TimerQueue<Named>(100, (entry) => fired.push(`long ${entry.name}`))
    const a = new Named('a')
    long.add(a)
    vi.advanceTimersByTime(60)
    long.add(a)
    vi.advanceTimersByTime(60)
    expect(fired).toEqual([])
    short.add(a)
    vi.advanceTimersByTime(50)
    expect(fired).toEqual(['short a'])
    vi.advanceTimersByTime(1000)
    expect(fired).toEqual(['short a'])
  })

  it('lets an entry added again while the queue fires wait for its next run, even with a delay of 0', () => {
    let runs = 0
    const entry = new Named('a')
    const queue = new TimerQueue<Named>(0, () => {
      runs++
      queue.add(entry)
    })
    queue.add(entry)
    vi.advanceTimersByTime(1)
    expect(runs).toBeGreaterThanOrEqual(1)
    expect(runs).toBeLessThanOrEqual(2)
    entry.leaveQueue()
    expect(vi.getTimerCount()).toBe(0)
  })

  it('keeps the deadlines of the others when an entry that fires is added again', () => {
    // A frozen session's PING puts it back in the queue that fired it (see `Session.#ping`).
    const fired: string[] = []
    const queue = new TimerQueue<Named>(100, (entry) => {
      fired.push(entry.name)
      if (entry.name === 'again') queue.add(entry)
    })
    queue.add(new Named('again'))
    vi.advanceTimersByTime(50)
    queue.add(new Named('b'))
    vi.advanceTimersByTime(50)
    expect(fired).toEqual(['again'])
    vi.advanceTimersByTime(50)
    expect(fired).toEqual(['again', 'b'])
    vi.advanceTimersByTime(50)
    expect(fired).toEqual(['again', 'b', 'again'])
  })

  it('tells how late each run of its timer came after the first deadline', async () => {
    const late: number[] = []
    const fired: string[] = []
    const queue = new TimerQueue<Named>(
      100,
      (entry) => fired.push(entry.name),
      (ms) => late.push(ms),
    )
    queue.add(new Named('a'))
    vi.advanceTimersByTime(100)
    // On time to the millisecond under fake timers.
    expect({ fired, late }).toEqual({ fired: ['a'], late: [0] })

    // An event loop held up 150 ms past the deadline: the next run says so.
    vi.useRealTimers()
    queue.add(new Named('b'))
    const busyUntil = performance.now() + 250
    while (performance.now() < busyUntil) {}
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(fired).toEqual(['a', 'b'])
    expect(late).toHaveLength(2)
    expect(late[1]).toBeGreaterThanOrEqual(145)
  })
})

describe('TimerQueue with a delay past what a Node timer holds', () => {
  it('waits without running its timer every millisecond', async () => {
    // Real timers: Node fires a timer set past 2^31-1 ms after 1 ms, with a warning.
    vi.useRealTimers()
    const warnings: Error[] = []
    const warned = (warning: Error) => void warnings.push(warning)
    process.on('warning', warned)
    const runs: number[] = []
    const fired: string[] = []
    // handshakeTimeout + pingTimeout, both at their largest: the delay of the `lastCall` queue.
    const queue = new TimerQueue<Named>(
      2 * (2 ** 31 - 1),
      (entry) => fired.push(entry.name),
      (ms) => runs.push(ms),
    )
    const entry = new Named('far')
    try {
      queue.add(entry)
      await new Promise((resolve) => setTimeout(resolve, 50))
      expect(fired).toEqual([])
      expect(runs).toEqual([])
      expect(warnings.filter((w) => w.name === 'TimeoutOverflowWarning')).toEqual([])
    } finally {
      queue.remove(entry)
      process.off('warning', warned)
    }
  })

  it('fires such an entry at its deadline, its timer set again on the way', () => {
    const fired: string[] = []
    const delay = 2 * (2 ** 31 - 1)
    const queue = new TimerQueue<Named>(delay, (entry) => fired.push(entry.name))
    queue.add(new Named('far'))
    vi.advanceTimersByTime(delay - 1)
    expect(fired).toEqual([])
    vi.advanceTimersByTime(1)
    expect(fired).toEqual(['far'])
    expect(vi.getTimerCount()).toBe(0)
  })
})
