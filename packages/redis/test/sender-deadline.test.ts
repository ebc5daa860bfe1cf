// The bound of a count held for another node's question: before its sender stops waiting, by
// the two Redis hops this node measured and a slack for event-loop lag (a fifth of what was left,
// within 50 ms and 500 ms), never later than the question's own timeout from its arrival, and
// never sooner than half of what was left; by Redis' clock too, which knows how long the question
// waited before Redis ran it, down to that same half.
import { MAX_TIMER_MS } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { readTime } from '../src/nodes.js'
import { answerWithin, SLACK_MAX_MS, SLACK_MS, slackFor } from '../src/sender-deadline.js'

describe("the bound of a count held for another node's question", () => {
  it('is as before for a question without what was left (a sender of an earlier version)', () => {
    expect(answerWithin(800, undefined, 3)).toBeUndefined()
  })

  it('ends the two hops and the slack before what was left of the sender’s timeout', () => {
    expect(answerWithin(800, 790, 4)).toBe(790 - 8 - 158)
    // No heartbeat measured yet: the slack alone.
    expect(answerWithin(800, 800, undefined)).toBe(800 - 160)
  })

  it('keeps a slack that grows with what was left, from 50 ms up to 500 ms', () => {
    // A loaded node's event loop lags 100 to 200 ms: a fixed 50 ms would not cover it.
    expect(slackFor(800)).toBe(160)
    expect(slackFor(1000)).toBe(200)
    // A short wait keeps at least the least slack; a long one gives up no more than the most.
    expect(slackFor(100)).toBe(SLACK_MS)
    expect(slackFor(60_000)).toBe(SLACK_MAX_MS)
    expect(answerWithin(60_000, 60_000, 4)).toBe(60_000 - 8 - SLACK_MAX_MS)
  })

  it('never waits longer than the question’s timeout, whatever the sender says is left', () => {
    expect(answerWithin(800, 5000, 0)).toBe(800 - 160)
    // A timeout shorter than the slack: half of it.
    expect(answerWithin(10, 20, 0)).toBe(5)
  })

  it('never gives a count sooner than half of what was left, however slow a heartbeat was', () => {
    expect(answerWithin(800, 800, 10_000)).toBe(400)
    expect(answerWithin(800, 0, 10)).toBe(0)
  })

  it('takes what is left by Redis’ clock when that is sooner: the question waited before Redis ran it', () => {
    // Sent with 790 left, it reached Redis 100 ms later: the slack is of what the sender said.
    expect(answerWithin(800, 790, 4, 690)).toBe(690 - 8 - 158)
    // What is left by that clock less the hops, down to half of what the sender said was left.
    expect(answerWithin(800, 790, 4, 490)).toBe(395)
    expect(answerWithin(800, 790, 10_000, 490)).toBe(395)
    expect(answerWithin(800, 790, 100, 490)).toBe(395)
  })

  it('never gives a count sooner than half of what was left, whatever Redis’ clock says is left', () => {
    // Nothing left by that clock, or little: the two nodes may have read two clocks (a failover
    // to a Redis on another machine, before both beat again), and the sender still waits.
    expect(answerWithin(800, 790, 4, -30)).toBe(395)
    expect(answerWithin(800, 790, 4, 100)).toBe(395)
    // No `l` to floor it: as before, no bound.
    expect(answerWithin(800, undefined, 4, -30)).toBeUndefined()
  })

  it('never waits longer for what Redis’ clock says is left than for what the sender said was', () => {
    // The two clocks read far apart (a failover to a Redis on another machine): `l` bounds it.
    expect(answerWithin(800, 790, 4, 60_000)).toBe(790 - 8 - 158)
  })

  it('sets no bound where the question has no timer', () => {
    expect(answerWithin(MAX_TIMER_MS + 1, 1000, 1)).toBeUndefined()
  })

  it('reads Redis’ clock only from a TIME reply, whatever else the heartbeat returns', () => {
    expect(readTime(['1700000000', '123456'])).toBe(1_700_000_000_123.456)
    expect(readTime([Buffer.from('1700000000'), Buffer.from('5')])).toBe(1_700_000_000_000.005)
    expect(readTime([])).toBeUndefined()
    expect(readTime(['1700000000'])).toBeUndefined()
    expect(readTime(['-1', '0'])).toBeUndefined()
    expect(readTime(['1e3', '0'])).toBeUndefined()
    expect(readTime(['1700000000', '1234567'])).toBeUndefined()
    expect(readTime('1700000000')).toBeUndefined()
    expect(readTime([1700000000, 0])).toBeUndefined()
  })
})
