import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { Timed, TimerQueue } from './timer-queue.js'

// The queue's timers and clock are faked; its turns after each run (setImmediate) are real: fake
// timers would run an immediate set while they advance a millisecond later.
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] })
})

afterEach(() => {
  vi.useRealTimers()
})

/**
 * Advances the fake clock by `ms`, then lets the two turns of the event loop that follow a run of
 * a queue's timer go by: its entries still due fire in the second.
 */
async function advance(ms: number): Promise<void> {
  vi.advanceTimersByTime(ms)
  await turn()
  await turn()
}

/** setImmediate as the module found it: a spy on the queue's does not count the test's own. */
const immediate = setImmediate
const turn = () => new Promise((resolve) => immediate(resolve))

/** An owner of deadlines, as a session is: its own entry in the queues. */
class Named extends Timed {
  constructor(readonly name: string) {
    super()
  }
}

describe('TimerQueue', () => {
  it('fires each entry delay ms after it was added, in order, under one timer', async () => {
    const fired: string[] = []
    const queue = new TimerQueue<Named>(100, (entry) => fired.push(entry.name))
    queue.add(new Named('a'))
    await advance(30)
    queue.add(new Named('b'))
    queue.add(new Named('c'))
    expect(vi.getTimerCount()).toBe(1)
    await advance(69)
    expect(fired).toEqual([])
    await advance(1)
    expect(fired).toEqual(['a'])
    await advance(29)
    expect(fired).toEqual(['a'])
    await advance(1)
    expect(fired).toEqual(['a', 'b', 'c'])
    expect(vi.getTimerCount()).toBe(0)
  })

  it('counts an entry added from a moment past from then: at once when that is past, never before one in', async () => {
    const fired: string[] = []
    const queue = new TimerQueue<Named>(100, (entry) => fired.push(entry.name))
    await advance(500)
    const start = performance.now()
    // Its deadline passed already: it fires at the next run, at once.
    queue.add(new Named('past'), start - 150)
    await advance(0)
    expect(fired).toEqual(['past'])
    queue.add(new Named('a'))
    queue.add(new Named('b'), start - 60)
    // b's own deadline (40 ms from now) comes before a's: it waits for a, whose place it cannot pass.
    await advance(99)
    expect(fired).toEqual(['past'])
    await advance(1)
    expect(fired).toEqual(['past', 'a', 'b'])
    queue.add(new Named('c'), performance.now() - 30)
    await advance(69)
    expect(fired).toEqual(['past', 'a', 'b'])
    await advance(1)
    expect(fired).toEqual(['past', 'a', 'b', 'c'])
  })

  it('forgets a cancelled entry, and lets its timer go when nothing is left', async () => {
    const fired: string[] = []
    const queue = new TimerQueue<Named>(100, (entry) => fired.push(entry.name))
    const a = new Named('a')
    const b = new Named('b')
    queue.add(a)
    queue.add(b)
    a.leaveQueue()
    await advance(100)
    expect(fired).toEqual(['b'])
    queue.add(a)
    a.leaveQueue()
    expect(vi.getTimerCount()).toBe(0)
    await advance(1000)
    expect(fired).toEqual(['b'])
  })

  it('moves an entry added again, or added to another queue, to its new deadline', async () => {
    const fired: string[] = []
    const short = new TimerQueue<Named>(50, (entry) => fired.push(`short ${entry.name}`))
    const long = new TimerQueue<Named>(100, (entry) => fired.push(`long ${entry.name}`))
    const a = new Named('a')
    long.add(a)
    await advance(60)
    long.add(a)
    await advance(60)
    expect(fired).toEqual([])
    short.add(a)
    await advance(50)
    expect(fired).toEqual(['short a'])
    await advance(1000)
    expect(fired).toEqual(['short a'])
  })

  it('lets an entry added again while the queue fires wait for its next run, even with a delay of 0', async () => {
    let runs = 0
    const entry = new Named('a')
    const queue = new TimerQueue<Named>(0, () => {
      runs++
      queue.add(entry)
    })
    queue.add(entry)
    await advance(1)
    expect(runs).toBeGreaterThanOrEqual(1)
    expect(runs).toBeLessThanOrEqual(2)
    entry.leaveQueue()
    expect(vi.getTimerCount()).toBe(0)
  })

  it('keeps the deadlines of the others when an entry that fires is added again', async () => {
    // A frozen session's PING puts it back in the queue that fired it (see `Session.#ping`).
    const fired: string[] = []
    const queue = new TimerQueue<Named>(100, (entry) => {
      fired.push(entry.name)
      if (entry.name === 'again') queue.add(entry)
    })
    queue.add(new Named('again'))
    await advance(50)
    queue.add(new Named('b'))
    await advance(50)
    expect(fired).toEqual(['again'])
    await advance(50)
    expect(fired).toEqual(['again', 'b'])
    await advance(50)
    expect(fired).toEqual(['again', 'b', 'again'])
  })

  it('lets input read in the two turns after its timer ran move an entry, which then does not fire', async () => {
    // After a stall of the event loop, Node runs the timers that ran out before it reads the
    // sockets: a PONG read then puts its session back at the end of the queue, as `add` does. One
    // on an open connection is read in the first turn, one on a connection accepted then in the
    // second.
    const fired: string[] = []
    const queue = new TimerQueue<Named>(100, (entry) => fired.push(entry.name))
    const open = new Named('open')
    const accepted = new Named('accepted')
    queue.add(open)
    queue.add(accepted)
    queue.add(new Named('silent'))
    vi.advanceTimersByTime(100)
    queue.add(open)
    await turn()
    expect(fired).toEqual([])
    queue.add(accepted)
    await turn()
    expect(fired).toEqual(['silent'])
    await advance(100)
    expect(fired).toEqual(['silent', 'open', 'accepted'])
    expect(vi.getTimerCount()).toBe(0)
  })

  it('lets an entry taken out in those turns go, and its timer with it when nothing is left', async () => {
    const fired: string[] = []
    const queue = new TimerQueue<Named>(100, (entry) => fired.push(entry.name))
    const done = new Named('done')
    queue.add(done)
    vi.advanceTimersByTime(100)
    await turn()
    done.leaveQueue()
    await turn()
    expect(fired).toEqual([])
    expect(vi.getTimerCount()).toBe(0)
    await advance(1000)
    expect(fired).toEqual([])
  })

  it('fires every entry due after each run of its timer, with two immediates in all', async () => {
    const fired: string[] = []
    const queue = new TimerQueue<Named>(100, (entry) => fired.push(entry.name))
    for (let i = 0; i < 1000; i++) queue.add(new Named(String(i)))
    const immediates = vi.spyOn(globalThis, 'setImmediate')
    try {
      vi.advanceTimersByTime(100)
      expect(fired).toEqual([])
      expect(immediates).toHaveBeenCalledTimes(1)
      await turn()
      await turn()
      expect(immediates).toHaveBeenCalledTimes(2)
    } finally {
      immediates.mockRestore()
    }
    expect(fired).toHaveLength(1000)
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
    await advance(100)
    // On time to the millisecond under fake timers.
    expect({ fired, late }).toEqual({ fired: ['a'], late: [0] })

    // An event loop held up 150 ms past the deadline: its timer runs then, the clock 150 ms past
    // the deadline, and the run says so. Fake timers run each timer on time to the millisecond,
    // so the hold-up is the clock's: read 150 ms ahead from the moment the entry was added.
    queue.add(new Named('b'))
    const clock = performance.now.bind(performance)
    vi.spyOn(performance, 'now').mockImplementation(() => clock() + 150)
    await advance(100)
    expect({ fired, late }).toEqual({ fired: ['a', 'b'], late: [0, 150] })
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

  it('fires such an entry at its deadline, its timer set again on the way', async () => {
    const fired: string[] = []
    const delay = 2 * (2 ** 31 - 1)
    const queue = new TimerQueue<Named>(delay, (entry) => fired.push(entry.name))
    queue.add(new Named('far'))
    await advance(delay - 1)
    expect(fired).toEqual([])
    await advance(1)
    expect(fired).toEqual(['far'])
    expect(vi.getTimerCount()).toBe(0)
  })
})
