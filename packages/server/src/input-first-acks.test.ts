import { AckTable, ErrorCode, ParleyError } from '@parley/protocol'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { InputFirstAckTable } from './input-first-acks.js'

/**
 * How far the fake clock is advanced to run every wait out: a bounded time, never "run all". In
 * a worker shared with other test files, their leftovers (a client's reconnect loop) would run
 * too, without end.
 */
const PAST_EVERY_WAIT = 1000

/** The fake clock runs timers and turns: each fake turn of the event loop is one ms of it. */
const TIMERS_AND_TURNS: Parameters<typeof vi.useFakeTimers>[0] = {
  toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate'],
}

describe('InputFirstAckTable', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it("times out as the protocol's table does, with its code and wording", async () => {
    vi.useFakeTimers(TIMERS_AND_TURNS)
    const errors: (ParleyError<string> | null)[] = []
    new AckTable(10).register((error) => errors.push(error), 100, 'event "chat": ')
    new InputFirstAckTable(10).register((error) => errors.push(error), 100, 'event "chat": ')
    await vi.advanceTimersByTimeAsync(PAST_EVERY_WAIT)
    expect(errors.map((error) => [error?.code, error?.message])).toEqual([
      ['PARLEY_ACK_TIMEOUT', 'event "chat": no reply within 100 ms'],
      ['PARLEY_ACK_TIMEOUT', 'event "chat": no reply within 100 ms'],
    ])
  })

  it('leaves no timer behind a wait ended by its reply, by forget or by rejectAll', () => {
    vi.useFakeTimers(TIMERS_AND_TURNS)
    const table = new InputFirstAckTable(10)
    const settled: unknown[] = []
    const replied = table.register((error, args) => settled.push(error ?? args), 1000)
    const forgotten = table.register(() => settled.push('forgotten'), 1000)
    table.register((error) => settled.push(error?.code), 1000)
    expect(vi.getTimerCount()).toBe(3)
    table.settle(replied, null, ['yes'])
    table.forget(forgotten)
    table.rejectAll(new ParleyError(ErrorCode.DISCONNECTED, 'the session ended'))
    expect(vi.getTimerCount()).toBe(0)
    expect(settled).toEqual([['yes'], 'PARLEY_DISCONNECTED'])
  })

  it('sets no timer for a wait without a timeout, or one past MAX_TIMER_MS', () => {
    vi.useFakeTimers(TIMERS_AND_TURNS)
    const table = new InputFirstAckTable(10)
    table.register(() => {})
    table.register(() => {}, Number.POSITIVE_INFINITY)
    table.register(() => {}, 2 ** 31)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('gives a reply that came after its timer ran, within the two turns, to the wait', async () => {
    vi.useFakeTimers(TIMERS_AND_TURNS)
    const table = new InputFirstAckTable(10)
    const settled: unknown[] = []
    const id = table.register((error, args) => settled.push(error?.code ?? args), 100)
    // The timer ran; the first turn, where input read after a stall comes, has not.
    await vi.advanceTimersByTimeAsync(100)
    expect(settled).toEqual([])
    table.settle(id, null, ['in time'])
    await vi.advanceTimersByTimeAsync(PAST_EVERY_WAIT)
    expect(settled).toEqual([['in time']])
  })
})
