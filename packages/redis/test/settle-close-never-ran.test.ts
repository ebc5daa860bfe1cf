// A drain settles a session nobody claimed before its seal (settleHandOff): what never ran, and
// waits behind an own broadcast that Redis may still run, reaches the session at the settle's
// end, into its tail. The adapter's close ends that wait early; what never ran must still reach
// the tail then, not be dropped because appends are refused once the adapter is closed.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { argOf, fakeClusterSuite, handedOffSession, message, to, untilTailHolds } from './handoff-support.js'
import { givenUpNeverRun } from './held-seal-scene.js'

describe.skipIf(skipRedisSuites())('the settle before an unclaimed seal, ended by the close', () => {
  const suite = fakeClusterSuite()

  it('still puts what never ran into the tail', async () => {
    const cluster = suite.cluster({ requestTimeout: 300 })
    const [a] = await cluster.start(2)
    const sid = 'sid-settle-never-ran'
    const tail = await handedOffSession(a!, sid)
    // 'given': given up unanswered, and every probe that could prove it never ran lost.
    await givenUpNeverRun(a!)
    // 'never': never sent (a's client says it is not ready), so it never ran; it waits behind
    // 'given', whose fate is unknown.
    a!.down = true
    a!.adapter.broadcast(message('news', ['never']), to(['r']))
    await until(() => a!.adapter.stats.lostBroadcasts === 2, 5000, "'never' given up")
    a!.down = false
    expect(tail).toEqual([])

    // Only the bound (far away), or the close, ends the settle's wait.
    const settling = a!.adapter.settleHandOff(sid, 60_000)
    await new Promise((resolve) => setImmediate(resolve))
    await within(a!.adapter.close(), 10_000, "a's close")
    await within(settling, 10_000, 'the settle')

    expect(tail.map(argOf)).toEqual(['never'])
    await untilTailHolds(cluster, a!, 1, "'never' in the stored tail")
  }, 30_000)
})
