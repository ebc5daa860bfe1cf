// The adapter's own deadlines are judged on the monotonic clock (`performance.now()`), as the PX
// of a record of how a session ended is measured (see `LeftOfTtl` in ended.ts): a step of the
// wall clock (NTP, an operator) must neither end a wait early nor stretch it. Fake timers move
// the monotonic clock and the timers together; `vi.setSystemTime` steps the wall clock alone.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { AppendsAfterClose } from '../src/appends-after-close.js'
import { Claimers } from '../src/claimers.js'
import { Commands, LOOK_AGAIN_MS } from '../src/commands.js'
import { GOODBYE_MS, Nodes } from '../src/nodes.js'
import type { RedisClient } from '../src/options.js'
import { Undos } from '../src/undos.js'
import { WARN_INTERVAL, Warnings } from '../src/warnings.js'
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

/** A node's heartbeat on a connected client that never answers: its goodbye waits for nothing. */
function unansweredNodes() {
  const { client: redis, state } = client()
  state.isReady = true
  const commands = new Commands(redis, 5000)
  const nodes = new Nodes({
    commands,
    prefix: 'p',
    id: 'node-a',
    interval: 1000,
    path: undefined,
    route: undefined,
    routeAnyCase: false,
    timeout: 5000,
    address: () => '',
    channel: 'p:membership',
    warnings: new Warnings({ warn: () => {} }),
    gone: () => {},
    saidGoodbye: () => {},
    beaten: () => {},
    changed: () => {},
  })
  return { nodes, commands }
}

/** What the goodbye of `unansweredNodes` says of its steps left unanswered. */
const GOODBYE_UNANSWERED = [
  expect.stringContaining(
    `could not leave the mark of this node's goodbye (SET p:node:node-a:left: no answer within ${GOODBYE_MS} ms)`,
  ),
  expect.stringContaining(
    `could not remove this node from the live set (DEL, ZREM: no answer within ${GOODBYE_MS} ms)`,
  ),
]

/** The warnings written, by message, with their `times`. */
function watchedWarnings() {
  const lines: [string, unknown][] = []
  const warnings = new Warnings({
    warn: (details, message) => lines.push([message.replace('@parley/redis: ', ''), details.times]),
  })
  return { warnings, lines }
}

/** One turn of the event loop (setImmediate stays real). */
const nextTurn = () => new Promise((resolve) => setImmediate(resolve))

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

  it("a node's goodbye waits for Redis its whole time when the wall clock steps past it", async () => {
    const { nodes, commands } = unansweredNodes()
    const stopping = nodes.stop()
    // Stepped as the goodbye starts: its steps still have all of GOODBYE_MS.
    vi.setSystemTime(Date.now() + STEP_MS)
    await vi.advanceTimersByTimeAsync(GOODBYE_MS - 1)
    expect(await isSettled(stopping)).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    expect(await isSettled(stopping)).toBe(true)
    expect(await stopping).toEqual(GOODBYE_UNANSWERED)
    commands.stop()
  })

  it("a node's goodbye stops waiting for Redis at its time when the wall clock steps back", async () => {
    const { nodes, commands } = unansweredNodes()
    const stopping = nodes.stop()
    vi.setSystemTime(Date.now() - STEP_MS)
    await vi.advanceTimersByTimeAsync(GOODBYE_MS)
    expect(await isSettled(stopping)).toBe(true)
    expect(await stopping).toEqual(GOODBYE_UNANSWERED)
    commands.stop()
  })

  it('a warning of a kind that wrote is held for the rest of its interval when the wall clock steps past it', () => {
    const { warnings, lines } = watchedWarnings()
    warnings.warn('heartbeat', 'failed')
    vi.setSystemTime(Date.now() + STEP_MS)
    warnings.warn('heartbeat', 'failed')
    expect(lines).toEqual([['failed', 1]])
    vi.advanceTimersByTime(WARN_INTERVAL)
    expect(lines).toEqual([
      ['failed', 1],
      ['failed', 1],
    ])
    warnings.close()
  })

  it('what a kind holds back is said at the end of its interval when the wall clock steps back', () => {
    const { warnings, lines } = watchedWarnings()
    warnings.warn('heartbeat', 'failed')
    vi.setSystemTime(Date.now() - STEP_MS)
    warnings.warn('heartbeat', 'failed')
    warnings.warn('heartbeat', 'failed')
    vi.advanceTimersByTime(WARN_INTERVAL)
    expect(lines).toEqual([
      ['failed', 1],
      ['failed', 2],
    ])
    warnings.close()
  })

  it('the first warning of a kind is written at once in a process younger than its interval', () => {
    // The fake monotonic clock starts at 0, as a process's does.
    expect(performance.now()).toBeLessThan(WARN_INTERVAL)
    const { warnings, lines } = watchedWarnings()
    warnings.warn('heartbeat', 'failed')
    expect(lines).toEqual([['failed', 1]])
    warnings.close()
  })

  it('the appends after the close are said in one line when the wall clock steps while they come', async () => {
    const { warnings, lines } = watchedWarnings()
    warnings.close()
    const appends = new AppendsAfterClose(warnings)
    appends.dropped()
    vi.setSystemTime(Date.now() + STEP_MS)
    for (let turn = 0; turn < 3; turn++) {
      appends.dropped()
      await nextTurn()
    }
    // A few turns with none: the line comes in the first.
    for (let turn = 0; turn < 3; turn++) await nextTurn()
    expect(lines).toEqual([[expect.stringMatching(/^4 append\(s\)/), 1]])
  })

  it('the appends after the close are said within the window when the wall clock steps back while they come', async () => {
    const { warnings, lines } = watchedWarnings()
    warnings.close()
    const appends = new AppendsAfterClose(warnings)
    appends.dropped()
    vi.setSystemTime(Date.now() - STEP_MS)
    // One a turn, each turn a second long: the line comes once the window is over, while they
    // still come (bounded: 5 s past it).
    for (let turn = 0; turn < WARN_INTERVAL / 1000 + 5 && lines.length === 0; turn++) {
      appends.dropped()
      vi.advanceTimersByTime(1000)
      await nextTurn()
    }
    expect(lines).toEqual([[expect.stringMatching(/^1[01] append\(s\)/), 1]])
    // They stop: the rest is said too, in its own line.
    for (let turn = 0; turn < 3; turn++) await nextTurn()
    expect(lines).toHaveLength(2)
  })
})
