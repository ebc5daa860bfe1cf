// The bound of a count held for another node's question: before its sender stops waiting, by
// the two Redis hops this node measured and a slack, never later than the question's own
// timeout from its arrival, and never sooner than half of what was left.
import { MAX_TIMER_MS } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { answerWithin, SLACK_MS } from '../src/sender-deadline.js'

describe("the bound of a count held for another node's question", () => {
  it('is as before for a question without what was left (a sender of an earlier version)', () => {
    expect(answerWithin(800, undefined, 3)).toBeUndefined()
  })

  it('ends the two hops and the slack before what was left of the sender’s timeout', () => {
    expect(answerWithin(800, 790, 4)).toBe(790 - 8 - SLACK_MS)
    // No heartbeat measured yet: the slack alone.
    expect(answerWithin(800, 800, undefined)).toBe(800 - SLACK_MS)
  })

  it('never waits longer than the question’s timeout, whatever the sender says is left', () => {
    expect(answerWithin(800, 5000, 0)).toBe(800 - SLACK_MS)
    // A timeout shorter than the slack: half of it.
    expect(answerWithin(10, 20, 0)).toBe(5)
  })

  it('never gives a count sooner than half of what was left, however slow a heartbeat was', () => {
    expect(answerWithin(800, 800, 10_000)).toBe(400)
    expect(answerWithin(800, 0, 10)).toBe(0)
  })

  it('sets no bound where the question has no timer', () => {
    expect(answerWithin(MAX_TIMER_MS + 1, 1000, 1)).toBeUndefined()
  })
})
