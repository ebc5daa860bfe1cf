// As resubscribe.test.ts, on a node in a burst that outlasts its requestTimeout (sessions opening
// on and on, each command answered in time: see `sustainedBurstOn`) while its subscriber takes the
// channel again: the note that settles its own broadcasts lost meanwhile takes its turn behind the
// burst, rather than wait for a queue that never empties while the burst lasts. Alone (see
// vitest.config.ts): beside other files the machine would set the burst's pace, not the test.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until } from '../../server/test/helpers.js'
import { sustainedBurstOn } from './burst.js'
import { fakeClusterSuite, message, to, won } from './handoff-support.js'
import { handedOffBeside, subscriberBack } from './resubscribe-scene.js'

/** b's `requestTimeout` in a burst: the burst lasts several times as long. */
const REQUEST_TIMEOUT = 1000

/** How long the burst lasts. */
const BURST_MS = 6 * REQUEST_TIMEOUT

describe.skipIf(skipRedisSuites())('a subscriber that reconnects alone on a node in a burst', () => {
  const suite = fakeClusterSuite()

  it('settles its own broadcasts sent meanwhile though a burst on it outlasts requestTimeout: its note takes its turn', async () => {
    const sid = 'sid-burst'
    // b's heartbeats far apart: the burst is the sessions opening alone.
    const { a, b, bSubscriber, watch } = await handedOffBeside(suite.cluster(), sid, {
      requestTimeout: REQUEST_TIMEOUT,
      heartbeatInterval: 10_000,
    })
    const raw = b.redis.duplicate()
    raw.on('error', () => {})
    await raw.connect()
    try {
      // As above, and from right after b0 sessions keep opening on b, longer than its
      // requestTimeout, each record answered in time (see `sustainedBurstOn`): its queue of
      // commands is never empty while its subscriber takes the channel again.
      const killed = b.redis.sendCommand(['CLIENT', 'KILL', 'ID', bSubscriber])
      b.adapter.broadcast(message('news', ['b0']), to(['r']))
      const burstEnds = performance.now() + BURST_MS
      const burst = sustainedBurstOn(raw, b.adapter, BURST_MS)
      try {
        expect(await killed).toBe(1)
        await subscriberBack(a, watch)
        // The burst runs its course: a note that waited for the queue to empty gave up meanwhile.
        await until(() => performance.now() >= burstEnds, BURST_MS + 1000, 'the end of the burst')
      } finally {
        await burst.stop()
      }
      const claim = won(await b.adapter.claimSession(sid))
      b.sockets.add('s1', sid)
      await claim.takeOver(() => b.adapter.addAll('s1', ['s1', 'r']))
      await until(() => b.adapter.handingOver === 0, 3000, 'the taken-over socket released')
    } finally {
      raw.destroy()
    }
  })
})
