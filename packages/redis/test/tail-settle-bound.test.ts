// The bound of the wait for the tails' queue to empty (`TailWrites.settle`), as a close waits
// for it: `ms`, once more when Redis answered a batch meanwhile, and never longer, whatever Redis
// does after. A fake write stands for Redis; fake timers stand for the clock, the turn after a
// timer ran (setImmediate) is real (as in answers-first-timer.test.ts).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { type TailOf, TailWrites } from '../src/tail-writes.js'

const MS = 100

/** A queue whose writes wait until the test answers them, each in turn. */
function writes() {
  const answers: ((took: boolean[]) => void)[] = []
  const queue = new TailWrites<TailOf>(
    'redis://127.0.0.1:0',
    () => true,
    (groups, went) => {
      went()
      return new Promise((resolve) => answers.push(() => resolve(groups.map(() => true))))
    },
    () => {},
  )
  return { queue, answers, tail: { gap: false, landed: 0 } }
}

/** Two batches: the first on its way to Redis (unanswered), the second queued behind it. */
async function twoBatches() {
  const made = writes()
  made.queue.append(made.tail, 'a')
  await vi.advanceTimersByTimeAsync(0)
  made.queue.append(made.tail, 'b')
  return made
}

const turn = () => new Promise((resolve) => setImmediate(resolve))

/** The wait's outcome, 'waiting' until it settles (read after the microtasks ran). */
function watch(promise: Promise<number>): () => number | 'waiting' {
  let left: number | 'waiting' = 'waiting'
  void promise.then((value) => {
    left = value
  })
  return () => left
}

describe('the wait for the tails to be written, bounded', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('ends after its bound when Redis answers nothing', async () => {
    const { queue, tail } = writes()
    queue.append(tail, 'a')
    await vi.advanceTimersByTimeAsync(0)
    const left = watch(queue.settle(MS))
    await vi.advanceTimersByTimeAsync(MS - 1)
    await turn()
    expect(left()).toBe('waiting')
    await vi.advanceTimersByTimeAsync(1)
    // The verdict, a turn after the timer (see `AnswersFirstTimer`).
    await turn()
    expect(left()).toBe(1)
  })

  it('waits once more when Redis answered meanwhile, and no more however it answers after', async () => {
    const { queue, answers } = await twoBatches()
    const left = watch(queue.settle(MS))
    // The first batch answered before the bound; the one behind it goes, and is not answered.
    await vi.advanceTimersByTimeAsync(MS / 2)
    answers[0]!([true])
    await vi.advanceTimersByTimeAsync(0)
    expect(answers).toHaveLength(2)
    await vi.advanceTimersByTimeAsync(MS / 2)
    await turn()
    expect(left()).toBe('waiting')
    await vi.advanceTimersByTimeAsync(MS - 1)
    await turn()
    expect(left()).toBe('waiting')
    await vi.advanceTimersByTimeAsync(1)
    // The verdict, a turn after the timer (see `AnswersFirstTimer`).
    await turn()
    expect(left()).toBe(1)
    queue.stop()
  })

  it('gives no more time when Redis answered only before the wait began', async () => {
    const { queue, answers } = await twoBatches()
    answers[0]!([true])
    await vi.advanceTimersByTimeAsync(0)
    const left = watch(queue.settle(MS))
    await vi.advanceTimersByTimeAsync(MS)
    await turn()
    expect(left()).toBe(1)
    queue.stop()
  })

  it('ends as the queue empties, during the time given once more', async () => {
    const { queue, answers } = await twoBatches()
    const left = watch(queue.settle(MS))
    answers[0]!([true])
    await vi.advanceTimersByTimeAsync(MS + MS / 2)
    await turn()
    expect(left()).toBe('waiting')
    answers[1]!([true])
    await vi.advanceTimersByTimeAsync(0)
    expect(left()).toBe(0)
  })
})
