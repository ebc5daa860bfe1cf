// A node closes while a socket it took over still takes its own broadcasts when they come back
// over Redis (one of them still on its way: see src/cut.ts, `positionUntilBack`). Nothing
// crosses Redis after the close, so nothing comes back: what the node emits then reaches that
// socket at once, each broadcast once and in the order emitted, as it reaches a socket being
// handed off or one whose tail is still to be read.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { within } from '../../server/test/helpers.js'
import { fakeClusterSuite, handedOffSession, message, takeOverOn, to, won } from './handoff-support.js'

describe.skipIf(skipRedisSuites())(
  'a socket taken over, still waiting for its node’s own broadcasts at the close',
  () => {
    const suite = fakeClusterSuite()

    it('takes what its node broadcasts after the close, once each, in order', async () => {
      const [a, b] = await suite.cluster().start(2)
      const sid = 'sid-taken-over-after-close'
      await handedOffSession(a!, sid)

      // b's own broadcast before the takeover, which Redis answers and never delivers (as a
      // message pub/sub loses): the socket b takes over waits for it to come back, positioned.
      b!.lose = (args) => args[0] === 'PUBLISH' && args[2]?.includes('b0') === true
      b!.adapter.broadcast(message('news', ['b0']), to(['elsewhere']))
      const { taken, done } = takeOverOn(b!, won(await b!.adapter.claimSession(sid)), sid)
      await within(done, 5000, 'the takeover')
      expect(b!.adapter.handingOver).toBe(1)

      await within(b!.adapter.close(), 10_000, "b's close")
      b!.adapter.broadcast(message('news', ['n1']), to(['r']))
      b!.adapter.broadcast(message('news', ['n2']), to(['r']))
      await new Promise((resolve) => setImmediate(resolve))
      expect(taken.got).toEqual(['n1', 'n2'])
    })
  },
)
