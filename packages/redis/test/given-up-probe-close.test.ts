// A node's own plain broadcast given up unanswered while a session is handed over is awaited by
// that session, and the node sends itself a probe every requestTimeout until it is settled (see
// src/broadcasts.ts). Its timer must end with the adapter's close, not one turn after it.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { fakeClusterSuite, HeldOnDroppedLink, handedOffSession, message, to } from './handoff-support.js'
import { isBroadcast } from './published.js'

/** Distinct from the heartbeat's (300 ms), so that the timers of requestTimeout are told apart. */
const REQUEST_TIMEOUT = 700

describe.skipIf(skipRedisSuites())('an own plain broadcast given up unanswered, at close', () => {
  const suite = fakeClusterSuite()
  afterEach(() => {
    vi.restoreAllMocks()
  })

  /** Node a, its session being handed over, its link stalled from its next broadcast on. */
  async function stalledWhileHandingOff() {
    const [a] = await suite.cluster({ requestTimeout: REQUEST_TIMEOUT }).start(2)
    await handedOffSession(a!, 'sid-probe-close')
    const started = vi.spyOn(globalThis, 'setInterval')
    const cleared = vi.spyOn(globalThis, 'clearInterval')
    /** How many intervals of requestTimeout started from now on are still running. */
    const running = () =>
      started.mock.calls.filter(([, ms], at) => {
        const handle = started.mock.results[at]?.value as unknown
        return ms === REQUEST_TIMEOUT && !cleared.mock.calls.some(([h]) => h === handle)
      }).length
    // The broadcast is given up unanswered, the probes sent after it held behind it.
    new HeldOnDroppedLink(a!, isBroadcast)
    return { a: a!, running }
  }

  it('given up before the close: its timer ends with the close', async () => {
    const { a, running } = await stalledWhileHandingOff()
    a.adapter.broadcast(message('news', ['given']), to(['r']))
    await until(() => a.adapter.stats.lostBroadcasts === 1, 5000, 'the broadcast given up')
    expect(running()).toBe(1)
    await within(a.adapter.close(), 10_000, "a's close")
    expect(running()).toBe(0)
  })

  it('given up after the close: no probe timer starts', async () => {
    const { a, running } = await stalledWhileHandingOff()
    a.adapter.broadcast(message('news', ['given']), to(['r']))
    const closing = a.adapter.close()
    await until(() => a.adapter.stats.lostBroadcasts === 1, 5000, 'the broadcast given up')
    await within(closing, 10_000, "a's close")
    await new Promise((resolve) => setImmediate(resolve))
    expect(running()).toBe(0)
  })
})
