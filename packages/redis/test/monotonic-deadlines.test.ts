// The adapter's own deadlines are judged on the monotonic clock (`performance.now()`), as the PX
// of a record of how a session ended is measured (see `LeftOfTtl` in ended.ts): a step of the
// wall clock (NTP, an operator) must neither end a wait early nor stretch it. Fake timers move
// the monotonic clock and the timers together; `vi.setSystemTime` steps the wall clock alone.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { Claimers } from '../src/claimers.js'
import { Commands, LOOK_AGAIN_MS } from '../src/commands.js'
import type { RedisClient } from '../src/options.js'
import { Undos } from '../src/undos.js'
import { isSettled } from './settled.js'

/** An hour: far past every wait below. */
const STEP_MS = 60 * 60 * 1000

/** A client whose connection the test turns on and off; what is sent is never answered. */
function client() {
  const state = {
    isOpen: true,
    isReady: false,
    sendCommand: (args: string[]) => {
      sent.push(args)
      return new Promise<unknown>(() => {})
    },
    duplicate: () => {
      throw new Error('not used')
    },
    on: () => {},
    off: () => {},
  }
  const sent: string[][] = []
  return { client: state as RedisClient, state, sent }
}

describe('deadlines under a step of the wall clock', () => {
  beforeEach(() => {
    vi.useFakeTimers({
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'performance'],
    })
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('an undo kept while Redis is away is not given up when the wall clock steps past its time', async () => {
    const { client: redis, state, sent } = client()
    const givenUp: string[] = []
    const undos = new Undos(
      redis,
      async (args) => redis.sendCommand(args),
      (why) => givenUp.push(why),
    )
    const over = undos.add(['SET', 'record', 'how it ended', 'PX', '60000'], 60_000)
    vi.advanceTimersByTime(1000)
    vi.setSystemTime(Date.now() + STEP_MS)
    // The connection is back: the undo goes, with 59 s of its time left.
    state.isReady = true
    undos.flush()
    expect(givenUp).toEqual([])
    expect(sent).toEqual([['SET', 'record', 'how it ended', 'PX', '60000']])
    expect(await isSettled(over)).toBe(false)
    undos.stop()
  })

  it('an undo is given up at its time when the wall clock steps back meanwhile', async () => {
    const { client: redis } = client()
    const givenUp: string[] = []
    const undos = new Undos(
      redis,
      async (args) => redis.sendCommand(args),
      (why) => givenUp.push(why),
    )
    const over = undos.add(['EVAL', 'undo'], 1000)
    vi.setSystemTime(Date.now() - STEP_MS)
    vi.advanceTimersByTime(1000)
    expect(await isSettled(over)).toBe(true)
    expect(givenUp).toEqual(['what it would take back has expired meanwhile'])
    undos.stop()
  })

  it('a close waits its whole time for the undos kept when the wall clock steps past it', async () => {
    const { client: redis } = client()
    const undos = new Undos(
      redis,
      async (args) => redis.sendCommand(args),
      () => {},
    )
    void undos.add(['EVAL', 'undo'], 60_000)
    let left: number | undefined
    void undos.settle(1000).then((count) => {
      left = count
    })
    vi.setSystemTime(Date.now() + STEP_MS)
    await vi.advanceTimersByTimeAsync(100)
    expect(left).toBeUndefined()
    await vi.advanceTimersByTimeAsync(900)
    expect(left).toBe(1)
    undos.stop()
  })

  it('a step waiting for Redis waits its whole timeout when the wall clock steps past it', async () => {
    const { client: redis, state } = client()
    const commands = new Commands(redis, 5000)
    const inTurn = commands.whenInTurn()
    vi.setSystemTime(Date.now() + STEP_MS)
    vi.advanceTimersByTime(LOOK_AGAIN_MS)
    expect(await isSettled(inTurn)).toBe(false)
    // Redis is back within the timeout: the step goes on.
    state.isReady = true
    vi.advanceTimersByTime(LOOK_AGAIN_MS)
    expect(await inTurn).toBe(true)
    commands.stop()
  })

  it('a step waiting for Redis stops at its timeout when the wall clock steps back meanwhile', async () => {
    const { client: redis } = client()
    const commands = new Commands(redis, 5000)
    const inTurn = commands.whenInTurn()
    vi.setSystemTime(Date.now() - STEP_MS)
    vi.advanceTimersByTime(5000 + LOOK_AGAIN_MS)
    expect(await isSettled(inTurn)).toBe(true)
    expect(await inTurn).toBe(false)
    commands.stop()
  })

  it('the node that claimed a session is heard for its ttl, whatever the wall clock does', () => {
    const claimers = new Claimers()
    claimers.record('socket-1', 'node-b', 60_000)
    vi.setSystemTime(Date.now() + STEP_MS)
    expect(claimers.claimedBy('socket-1', 'node-b')).toBe(true)
    vi.setSystemTime(Date.now() - 2 * STEP_MS)
    vi.advanceTimersByTime(60_000)
    expect(claimers.claimedBy('socket-1', 'node-b')).toBe(false)
  })
})
