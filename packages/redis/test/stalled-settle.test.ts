// A drain's settle before the seal of a session nobody claimed (`settleHandOff`), its socket
// awaiting an own broadcast given up that Redis never ran, and a stall of the node's own thread
// while the probe's note that proves it never ran is on its way: the note reaches the node's
// subscriber during the stall, and the settle's bound runs out during it too. Node runs the
// bound's timer before it reads the subscriber; the bound's verdict waits one turn, so that the
// note is read first and the broadcast is in the tail when the settle resolves, before the server
// takes the last packets and seals. The nodes run in this thread, which the test blocks.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { within } from '../../server/test/helpers.js'
import { stallFromCheckPhase } from '../../server/test/stall.js'
import { MUTE } from '../../server/test/stall-gate.js'
import { argOf, fakeClusterSuite, handedOffSession, untilTailHolds } from './handoff-support.js'
import { givenUpNeverRun } from './held-seal-scene.js'
import { isProbe } from './published.js'

/** The settle's bound, as the server's drain gives it (`SETTLE_WAIT_MS`). */
const SETTLE_MS = 1000

/** The stall, from the probe the settle sends: well past the bound. */
const STALL_MS = SETTLE_MS + 500

describe.skipIf(skipRedisSuites())(
  "the settle before an unclaimed seal while the node's thread stalled",
  () => {
    const suite = fakeClusterSuite()

    it('puts the broadcast whose note came in time into the tail before it resolves, once', async () => {
      const cluster = suite.cluster({ requestTimeout: 300 })
      const [a] = await cluster.start(2)
      const sid = 'sid-stalled-settle'
      const tail = await handedOffSession(a!, sid)
      // 'given': given up unanswered, never run; every probe until the settle's is lost.
      await givenUpNeverRun(a!)
      expect(tail).toEqual([])

      // The probe the settle sends at once goes, and the stall with it: node-redis writes it in
      // this turn's check phase, before the stall, and Redis sends the note back during it.
      let settling = false
      let stalled: Promise<boolean> | undefined
      a!.lose = (args) => isProbe(args) && !settling
      a!.hold = (args) => {
        if (!isProbe(args)) return undefined
        const reply = a!.redis.sendCommand(args)
        stalled ??= stallFromCheckPhase(new Int32Array(new SharedArrayBuffer(8)), MUTE, STALL_MS)
        return reply
      }
      settling = true
      // What the server would take the last packets after, and seal: the tail as it resolves.
      const atSettle = a!.adapter.settleHandOff(sid, SETTLE_MS).then(() => tail.map(argOf))
      expect(stalled).toBeDefined()
      await within(stalled!, 5000, 'the stall')
      // Resolved at the bound before the note was read, the tail would still lack 'given' (it
      // would come after, past the seal, and be lost).
      expect(await within(atSettle, 5000, 'the settle')).toEqual(['given'])
      await untilTailHolds(cluster, a!, 1, "'given' in the stored tail")
      expect(tail.map(argOf)).toEqual(['given'])
    })
  },
)
