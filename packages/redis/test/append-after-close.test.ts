// What the server gives a handed-off session after the adapter closed cannot reach its tail any
// more: the appends are dropped, and said, once for those of one event-loop turn with how many,
// never a line for each (a closing server may hand off many sessions at once).
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { within } from '../../server/test/helpers.js'
import { fakeClusterSuite, handedOffSession } from './handoff-support.js'

/** The words of the warning (see docs/errors.md). */
const DROPPED = "append(s) to handed-off sessions' tails came after the adapter closed"

describe.skipIf(skipRedisSuites())('appends to a handed-off tail after the close', () => {
  const suite = fakeClusterSuite()

  it('are said once, with how many, and none for a session not handed off', async () => {
    const [a] = await suite.cluster().start(2)
    const sid = 'sid-append-after-close'
    await handedOffSession(a!, sid)
    await within(a!.adapter.close(), 10_000, "a's close")
    const before = a!.warnings.length

    for (let i = 0; i < 3; i++) a!.adapter.appendHandOff(sid, `late ${i}`)
    // Never handed off here: nothing of it was lost.
    a!.adapter.appendHandOff('sid-not-handed-off', 'late')
    await new Promise((resolve) => setImmediate(resolve))
    // Another turn: nothing more to say about the first.
    await new Promise((resolve) => setImmediate(resolve))

    const said = a!.warnings.slice(before).filter((line) => line.includes(DROPPED))
    expect(said).toEqual([
      `@parley/redis: 3 ${DROPPED} (PARLEY_REDIS_APPEND_AFTER_CLOSE); the nodes that take those sessions over find their tails incomplete`,
    ])
  })
})
