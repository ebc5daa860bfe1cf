import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Adapter } from './adapter/adapter.js'
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

describe('a broadcast that wants replies', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('waits 10 s for them without timeout(ms), then rejects with PARLEY_ACK_TIMEOUT', async () => {
    vi.useFakeTimers()
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
    vi.useFakeTimers()
    const { adapter } = silentSocket()
    const calls: unknown[][] = []
    new BroadcastOperator(adapter, 1_000_000).emit('vote?', (...args: unknown[]) => calls.push(args))
    await vi.advanceTimersByTimeAsync(10_000)
    expect(calls).toEqual([[expect.objectContaining({ code: 'PARLEY_ACK_TIMEOUT' }), []]])
  })
})
