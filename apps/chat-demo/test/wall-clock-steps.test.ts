// The chat's deadlines and windows run on the monotonic clock: a step of the wall clock (NTP, an
// operator), faked here with Date alone, neither ends one at once nor stretches it. A time
// handed over by a node whose clock runs ahead of this one's is bounded as it is read.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { BurstLimit } from '../src/burst-limit.js'
import { type Holder, MessageOrder } from '../src/message-order.js'
import { Nicknames } from '../src/nicknames.js'
import { RateLimit } from '../src/rate-limit.js'
import { RedisStore } from '../src/redis-store.js'
import { ChatErrorCode } from '../src/shared.js'
import { MemoryStore } from '../src/store.js'

const HOUR = 60 * 60 * 1000

/** Steps the wall clock (Date, faked by `beforeEach`) by `ms`. */
function stepWallClock(ms: number): void {
  vi.setSystemTime(Date.now() + ms)
}

// Date alone, faked before anything under test is made: timers and the monotonic clock run on,
// and a clock that reads the wall clock (a default `now = Date.now`) reads the faked one.
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] })
})
afterEach(() => {
  vi.useRealTimers()
})

describe('a step of the wall clock', () => {
  it('does not end a rate limit window: a minute is a minute with the clock an hour ahead', () => {
    const limit = new RateLimit(2, 60_000)
    const window = RateLimit.empty()
    expect([limit.take(window), limit.take(window), limit.take(window)]).toEqual([true, true, false])
    stepWallClock(HOUR)
    expect(limit.take(window)).toBe(false)
    expect(limit.retryIn(window)).toBeGreaterThan(50_000)
  })

  it('does not stretch a rate limit window: stepped an hour back, a minute is still a minute', () => {
    // The monotonic clock faked too, to let the minute pass; a step of Date leaves it be.
    vi.useRealTimers()
    vi.useFakeTimers({ toFake: ['Date', 'performance'] })
    const limit = new RateLimit(2, 60_000)
    const window = RateLimit.empty()
    expect([limit.take(window), limit.take(window), limit.take(window)]).toEqual([true, true, false])
    stepWallClock(-HOUR)
    vi.advanceTimersByTime(59_999)
    expect(limit.take(window)).toBe(false)
    vi.advanceTimersByTime(1)
    expect(limit.take(window)).toBe(true)
  })

  it('does not refill a burst of typing signals', () => {
    const limit = new BurstLimit(2, 60_000)
    const bucket = BurstLimit.empty()
    expect([limit.take(bucket), limit.take(bucket), limit.take(bucket)]).toEqual([true, true, false])
    stepWallClock(HOUR)
    expect(limit.take(bucket)).toBe(false)
  })

  it('does not end the wait of later messages for a refused one', () => {
    const order = new MessageOrder(60_000)
    const holder: Holder = {}
    order.refused(holder, 'k1')
    stepWallClock(HOUR)
    expect(order.waits(holder, 'k2')).toBe(true)
  })

  it("does not forget a nickname's claim before its session opened", async () => {
    const nicknames = new Nicknames(async () => [])
    await nicknames.claim('ann', 'ann-browser')
    stepWallClock(HOUR)
    await expect(nicknames.claim('ann', 'other-browser')).rejects.toMatchObject({
      code: ChatErrorCode.NICKNAME_TAKEN,
    })
  })

  it("does not forget a message's key within the resend window (MemoryStore)", async () => {
    const store = new MemoryStore({ history: 1, resendWindow: 60_000 })
    const first = await store.add({ room: 'lobby', from: 'ann', text: 'hi', at: 1 }, 'k1')
    // Out of the history: only the key, kept for the resend window, finds it.
    await store.add({ room: 'lobby', from: 'bob', text: 'next', at: 2 }, 'k2')
    stepWallClock(HOUR)
    expect(await store.find('lobby', 'ann', 'k1')).toMatchObject({ id: 'stored' in first && first.stored.id })
  })

  it('does not make the Redis store give up on a command that has waited for less than its timeout', async () => {
    let answerFirst = (_value: unknown) => {}
    const sent: string[][] = []
    const client = {
      isReady: true,
      sendCommand: (args: string[]) => {
        sent.push(args)
        // The first is still unanswered when the second goes; the second is answered at once.
        if (sent.length === 1) return new Promise((resolve) => (answerFirst = resolve))
        return Promise.resolve([])
      },
    }
    const store = new RedisStore(client, { timeout: 60_000 })
    const first = store.quietest()
    stepWallClock(HOUR)
    await expect(store.quietest()).resolves.toEqual([])
    answerFirst([])
    await expect(first).resolves.toEqual([])
  })
})

describe('a time handed over by a node whose clock runs ahead', () => {
  it('makes a rate limit window last one period at most', () => {
    let now = 1_000_000
    const limit = new RateLimit(2, 1000, () => now)
    // Begun an hour "later", on the other node's clock, and full.
    const window = { start: now + HOUR, count: 2 }
    expect(limit.take(window)).toBe(false)
    expect(limit.retryIn(window)).toBe(1000)
    now += 1000
    expect(limit.take(window)).toBe(true)
  })

  it('makes the wait for a refused message last holdMs at most', () => {
    let now = 1_000_000
    const order = new MessageOrder(1000, () => now)
    const holder: Holder = { stall: { key: 'k1', until: now + HOUR } }
    expect(order.waits(holder, 'k2')).toBe(true)
    now += 1000
    expect(order.waits(holder, 'k2')).toBe(false)
  })
})
