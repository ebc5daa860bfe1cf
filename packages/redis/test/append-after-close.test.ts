// What the server gives a handed-off session after the adapter closed cannot reach its tail any
// more: the appends are dropped, and said once for the close with how many in all, once they stop
// coming: never a line for each, nor one for each event-loop turn (a closing server gives its
// sessions their last packets over several turns).
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { fakeClusterSuite, handedOffSession, message, to } from './handoff-support.js'

/** The words of the warning (see docs/errors.md). */
const DROPPED = "append(s) to handed-off sessions' tails came after the adapter closed"

describe.skipIf(skipRedisSuites())('appends to a handed-off tail after the close', () => {
  const suite = fakeClusterSuite()

  it('are said once for the close, with how many in all, and none for a session not handed off', async () => {
    const [a] = await suite.cluster().start(2)
    const sid = 'sid-append-after-close'
    await handedOffSession(a!, sid)
    await within(a!.adapter.close(), 10_000, "a's close")
    const before = a!.warnings.length

    // Over three turns, as a closing server's sessions each get their last packets.
    for (let turn = 0; turn < 3; turn++) {
      for (let i = 0; i < 2; i++) a!.adapter.appendHandOff(sid, `late ${turn} ${i}`)
      // Never handed off here: nothing of it was lost.
      a!.adapter.appendHandOff('sid-not-handed-off', 'late')
      await new Promise((resolve) => setImmediate(resolve))
    }
    await until(() => a!.warnings.slice(before).some((line) => line.includes(DROPPED)), 3000, 'the warning')
    // A few turns more: nothing more to say about them.
    for (let turn = 0; turn < 3; turn++) await new Promise((resolve) => setImmediate(resolve))

    const said = a!.warnings.slice(before).filter((line) => line.includes(DROPPED))
    expect(said).toEqual([
      `@parley/redis: 6 ${DROPPED} (PARLEY_REDIS_APPEND_AFTER_CLOSE); the nodes that take those sessions over find their tails incomplete`,
    ])
  })

  it('say a broadcast emitted after the close that a socket being handed over would take on its return', async () => {
    const [a] = await suite.cluster().start(2)
    const sid = 'sid-broadcast-after-close'
    const tail = await handedOffSession(a!, sid)
    await within(a!.adapter.close(), 10_000, "a's close")
    const before = a!.warnings.length

    // Nothing crosses Redis now, so it never comes back to s1, positioned for the handover.
    a!.adapter.broadcast(message('news', ['late']), to(['r']))
    await until(() => a!.warnings.slice(before).some((line) => line.includes(DROPPED)), 3000, 'the warning')

    expect(tail).toHaveLength(1)
    expect(a!.warnings.slice(before).filter((line) => line.includes(DROPPED))).toEqual([
      `@parley/redis: 1 ${DROPPED} (PARLEY_REDIS_APPEND_AFTER_CLOSE); the nodes that take those sessions over find their tails incomplete`,
    ])
  })
})
