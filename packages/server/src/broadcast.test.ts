import { ErrorCode, ParleyError } from '@parley/protocol'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Adapter, BroadcastReply } from './adapter/adapter.js'
import { BroadcastOperator } from './broadcast.js'

/** An adapter that reaches one socket, which never replies; it notes the timeout it is given. */
function silentSocket(): { adapter: Adapter; timeouts: number[] } {
  const timeouts: number[] = []
  const adapter = {
    broadcastWithAck: (
      _message: unknown,
      _options: unknown,
      timeout: number,
      expect: (n: number) => void,
    ) => {
      timeouts.push(timeout)
      expect(1)
    },
  } as unknown as Adapter
  return { adapter, timeouts }
}

/** An adapter that reaches `count` sockets, whose replies are `replies` (the rest never reply). */
function socketsReplying(count: number, replies: BroadcastReply[]): Adapter {
  return {
    broadcastWithAck: (
      _message: unknown,
      _options: unknown,
      _timeout: number,
      expect: (n: number) => void,
      reply: (r: BroadcastReply) => void,
    ) => {
      expect(count)
      for (const r of replies) reply(r)
    },
  } as unknown as Adapter
}

const failed = (code: string, message = 'x', details?: Record<string, unknown>): BroadcastReply => ({
  ok: false,
  error: new ParleyError(code, message, details ? { details } : undefined),
})

/**
 * Fake timeouts, real turns of the event loop: the verdict at a broadcast's timeout waits two of
 * them after its timer (see `InputFirstTimer`), which fake immediates would each hold for a
 * millisecond of the fake clock.
 */
const TIMEOUTS_ONLY: Parameters<typeof vi.useFakeTimers>[0] = { toFake: ['setTimeout', 'clearTimeout'] }

/** The two turns a verdict waits after its timer ran. */
async function verdictTurns(): Promise<void> {
  for (let turn = 0; turn < 2; turn++) await new Promise((resolve) => setImmediate(resolve))
}

describe('a broadcast that wants replies', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('waits 10 s for them without timeout(ms), then rejects with PARLEY_ACK_TIMEOUT', async () => {
    vi.useFakeTimers(TIMEOUTS_ONLY)
    const { adapter, timeouts } = silentSocket()
    const outcome = new BroadcastOperator(adapter, 1_000_000).emitWithAck('vote?').then(
      () => 'resolved',
      (error: { code: string; details: unknown }) => error,
    )
    let settled = false
    void outcome.then(() => {
      settled = true
    })
    expect(timeouts).toEqual([10_000])
    await vi.advanceTimersByTimeAsync(9_999)
    expect(settled).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    expect(await outcome).toMatchObject({ code: 'PARLEY_ACK_TIMEOUT', details: { replies: [] } })
  })

  it('calls an emit callback error-first without timeout(ms) too', async () => {
    vi.useFakeTimers(TIMEOUTS_ONLY)
    const { adapter } = silentSocket()
    const calls: unknown[][] = []
    new BroadcastOperator(adapter, 1_000_000).emit('vote?', (...args: unknown[]) => calls.push(args))
    await vi.advanceTimersByTimeAsync(10_000)
    await verdictTurns()
    expect(calls).toEqual([[expect.objectContaining({ code: 'PARLEY_ACK_TIMEOUT' }), []]])
  })

  it("says in its error's message why sockets did not reply, the commonest reasons first", async () => {
    const adapter = socketsReplying(5, [
      { ok: true, value: 'yes' },
      failed(ErrorCode.DISCONNECTED),
      failed(ErrorCode.SESSION_MOVED),
      failed(ErrorCode.SESSION_MOVED),
      failed('PARLEY_REDIS_REPLY_LOST'),
    ])
    const error = await new BroadcastOperator(adapter, 1_000_000)
      .emitWithAck('vote?')
      .catch((e: unknown) => e)
    // The code and the details are as they were: only the message says more.
    expect(error).toMatchObject({
      code: 'PARLEY_ACK_TIMEOUT',
      message: '4 socket(s) did not reply: 2 moved, 1 left, 1 PARLEY_REDIS_REPLY_LOST',
      details: { replies: ['yes'] },
    })
  })

  it('counts the sockets the timeout cut off as timed out, and names at most three reasons', async () => {
    vi.useFakeTimers(TIMEOUTS_ONLY)
    const adapter = socketsReplying(8, [
      failed(ErrorCode.DISCONNECTED),
      failed(ErrorCode.DISCONNECTED),
      failed(ErrorCode.SESSION_MOVED),
      failed(ErrorCode.ACK_TIMEOUT, 'dropped', { dropped: true }),
      failed('PARLEY_REDIS_REPLY_LOST'),
    ])
    const outcome = new BroadcastOperator(adapter, 1_000_000)
      .timeout(500)
      .emitWithAck('vote?')
      .catch((e: unknown) => e)
    await vi.advanceTimersByTimeAsync(500)
    expect(await outcome).toMatchObject({
      code: 'PARLEY_ACK_TIMEOUT',
      message: '8 socket(s) did not reply within 500 ms: 3 timed out, 2 left, 1 moved, 2 other',
      details: { replies: [] },
    })
  })
})

/**
 * An application's adapter that reaches `count` sockets, gets `replies` from them, then throws
 * (its store failed half-way).
 */
function throwingAfter(count: number | undefined, replies: BroadcastReply[]): Adapter {
  return {
    broadcastWithAck: (
      _message: unknown,
      _options: unknown,
      _timeout: number,
      expect: (n: number) => void,
      reply: (r: BroadcastReply) => void,
    ) => {
      if (count !== undefined) expect(count)
      for (const r of replies) reply(r)
      throw new Error('the store went away')
    },
  } as unknown as Adapter
}

describe('a broadcast with replies whose adapter throws', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it.each([
    ['at once', undefined, []],
    ['after one of two sockets replied', 2, [{ ok: true, value: 'yes' }]],
    ['after every socket replied', 1, [{ ok: true, value: 'yes' }]],
  ] as [string, number | undefined, BroadcastReply[]][])(
    'throws from emit and never calls the callback (%s)',
    async (_, count, replies) => {
      vi.useFakeTimers()
      const calls: unknown[][] = []
      const operator = new BroadcastOperator(throwingAfter(count, replies), 1_000_000).timeout(1000)
      expect(() => operator.emit('vote?', (...args: unknown[]) => calls.push(args))).toThrow(
        'the store went away',
      )
      // No timer is left to call it: the wait ended with the throw.
      expect(vi.getTimerCount()).toBe(0)
      await vi.advanceTimersByTimeAsync(2000)
      expect(calls).toEqual([])
    },
  )

  it('rejects emitWithAck with the adapter’s error, and leaves no timer', async () => {
    vi.useFakeTimers()
    const operator = new BroadcastOperator(throwingAfter(2, []), 1_000_000).timeout(1000)
    await expect(operator.emitWithAck('vote?')).rejects.toThrow('the store went away')
    expect(vi.getTimerCount()).toBe(0)
  })
})
