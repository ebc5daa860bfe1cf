// A node's own plain broadcast whose PUBLISH is given up unanswered while a session is handed
// over: Redis may still run it, so the session waits for it (see src/awaited.ts). One Redis never
// runs must still reach the session, once, without the node broadcasting again: the note the
// node sends itself behind it (its probe) proves it never ran.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until } from '../../server/test/helpers.js'
import {
  argOf,
  dropConnection,
  fakeClusterSuite,
  HeldOnDroppedLink,
  handedOffSession,
  message,
  to,
} from './handoff-support.js'
import { isBroadcast } from './published.js'

describe.skipIf(skipRedisSuites())('an own plain broadcast given up that Redis never runs', () => {
  const suite = fakeClusterSuite()

  // Its own bounds add up past the default 20 s: each node's start (connect and ready, 5 s each)
  // twice, 5 s for the two to see each other, then 3 + 5 (the connection made again) + 5 + 3 s
  // of waits, 41 s in all. A slow start on a loaded machine then fails as the wait it is, named.
  const OWN_BOUNDS_MS = 2 * (5000 + 5000) + 5000 + 3000 + 5000 + 5000 + 3000

  it('reaches the session being handed over once, the node sending nothing more', {
    timeout: OWN_BOUNDS_MS + 10_000,
  }, async () => {
    const [a] = await suite.cluster({ requestTimeout: 300 }).start(2)
    const tail = await handedOffSession(a!, 'sid-never')
    // a's link stalls from the broadcast on: nothing a sends after it runs either (the probe
    // sent when it is given up waits behind it), and the connection then drops with them all.
    new HeldOnDroppedLink(a!, isBroadcast)
    a!.adapter.broadcast(message('news', ['one']), to(['r']))
    await until(() => a!.adapter.stats.lostBroadcasts === 1, 3000, 'the broadcast given up')
    // It may still run: the session does not take it yet.
    expect(tail).toEqual([])
    // Lost with the connection, never run: the probe goes again on the next one.
    await dropConnection(a!)
    await until(() => tail.length > 0, 5000, 'the broadcast at the session')
    // Once, and in order with the next one, which comes back as any.
    a!.adapter.broadcast(message('news', ['two']), to(['r']))
    await until(() => tail.length > 1, 3000, 'the next broadcast at the session')
    expect(tail.map(argOf)).toEqual(['one', 'two'])
  })
})
