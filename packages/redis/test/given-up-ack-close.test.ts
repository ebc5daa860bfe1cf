// A node's own broadcast with acks whose PUBLISH is given up unanswered while a session is being
// handed over stays on its way, and the node sends itself a probe every requestTimeout until
// that is settled (see src/ack-broadcast.ts). The adapter's close settles the question: no such
// timer may be left running after it, whether the PUBLISH was given up before the close or
// after it (Redis silent, the close does not wait for it).
import type { BroadcastReply } from '@parley/server'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { fakeClusterSuite, HeldOnDroppedLink, handedOffSession, message, to } from './handoff-support.js'
import { isRequest } from './published.js'

/** Distinct from the heartbeat's (300 ms), so that the timers of requestTimeout are told apart. */
const REQUEST_TIMEOUT = 700

describe.skipIf(skipRedisSuites())('an own broadcast with acks given up unanswered, at close', () => {
  const suite = fakeClusterSuite()
  afterEach(() => {
    vi.restoreAllMocks()
  })

  /** Every interval of requestTimeout started from now on, and whether each was cleared. */
  function watchIntervals() {
    const started = vi.spyOn(globalThis, 'setInterval')
    const cleared = vi.spyOn(globalThis, 'clearInterval')
    return {
      started: () => started.mock.calls.filter(([, ms]) => ms === REQUEST_TIMEOUT).length,
      /** How many are still running. */
      left: () =>
        started.mock.calls.filter(([, ms], at) => {
          const handle = started.mock.results[at]?.value as unknown
          return ms === REQUEST_TIMEOUT && !cleared.mock.calls.some(([h]) => h === handle)
        }).length,
    }
  }

  /** Node a, its session being handed over, asks with acks (by default with no timeout of the caller's). */
  async function askWhileHandingOff(timeout = Number.POSITIVE_INFINITY) {
    const [a] = await suite.cluster({ requestTimeout: REQUEST_TIMEOUT }).start(2)
    await handedOffSession(a!, 'sid-ask-close')
    // a's link stalls from the request on: it is given up unanswered, and nothing after it runs.
    new HeldOnDroppedLink(a!, isRequest)
    const intervals = watchIntervals()
    const asked: { total: number | undefined; replies: BroadcastReply[] } = { total: undefined, replies: [] }
    a!.adapter.broadcastWithAck(
      message('ask', ['q']),
      to(['r']),
      timeout,
      (count) => {
        asked.total = count
      },
      (reply) => asked.replies.push(reply),
    )
    return { a: a!, intervals, asked }
  }

  it('given up before the close: the close answers the caller and clears the probe', async () => {
    const { a, intervals, asked } = await askWhileHandingOff()
    await until(() => a.adapter.stats.lostBroadcasts === 1, 5000, 'the request given up')
    // Given up, it waits, probing, for what proves it ran or not.
    expect(intervals.started()).toBeGreaterThan(0)
    expect(asked.total).toBeUndefined()
    await within(a.adapter.close(), 10_000, "a's close")
    expect(asked.total).toBe(0)
    expect(intervals.left()).toBe(0)
  })

  it('given up after the close: no probe is started', async () => {
    const { a, intervals, asked } = await askWhileHandingOff()
    const closing = a.adapter.close()
    // The close settled the question at once.
    expect(asked.total).toBe(0)
    await until(() => a.adapter.stats.lostBroadcasts === 1, 5000, 'the request given up')
    await within(closing, 10_000, "a's close")
    // One turn more: whatever the give-up set in motion has run.
    await new Promise((resolve) => setImmediate(resolve))
    expect(intervals.left()).toBe(0)
  })

  it("given up past the caller's timeout, before the close: the close clears the probe", async () => {
    const { a, intervals, asked } = await askWhileHandingOff(50)
    await until(() => asked.total !== undefined, 5000, "the caller's timeout")
    await until(() => a.adapter.stats.lostBroadcasts === 1, 5000, 'the request given up')
    // Redis may still run it: the probe goes on without a caller.
    expect(intervals.left()).toBeGreaterThan(0)
    await within(a.adapter.close(), 10_000, "a's close")
    expect(intervals.left()).toBe(0)
  }, 25_000)
})
