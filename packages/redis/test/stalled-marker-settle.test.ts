// A seal held at a claim marker for an own broadcast given up that Redis never ran (see
// held-seal-scene.ts), and a stall of the node's own thread while the note that proves it never
// ran is on its way: the note reaches the node's subscriber during the stall, and the seal's limit
// (`MARKER_SETTLE_MS`) runs out during it too. Node runs the limit's timer before it reads the
// subscriber; the limit's verdict waits one turn, so that the note is read first and the broadcast
// goes into the tail before the seal. Sealed at the limit first, the session handed off would miss
// it. The nodes run in this thread, which the test blocks; Redis sends the note meanwhile.
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { stallFromCheckPhase } from '../../server/test/stall.js'
import { MUTE } from '../../server/test/stall-gate.js'
import { MARKER_SETTLE_MS, markerSettles } from '../src/handing-off.js'
import { argOf, fakeClusterSuite, message, snapshotOf, to, won } from './handoff-support.js'
import { givenUpNeverRun } from './held-seal-scene.js'
import { isProbe } from './published.js'

/** The stall, from the probe sent as the seal's wait begins: well past the wait's limit. */
const STALL_MS = MARKER_SETTLE_MS + 500

describe.skipIf(skipRedisSuites())("a seal held at a claim marker while the node's thread stalled", () => {
  const suite = fakeClusterSuite()

  it('gives the tail the broadcast whose note came in time, once, in order', async () => {
    const cluster = suite.cluster()
    // a gives its own broadcast up soon.
    const a = await cluster.node(undefined, { requestTimeout: 300 })
    const b = await cluster.node()
    await until(() => [a, b].every((node) => node.adapter.liveNodes.length === 1), 5000, 'live nodes')
    const sid = 'sid-stalled-marker'
    const socket = a.sockets.add('s1', sid)
    a.adapter.addAll('s1', ['s1', 'r'])
    await a.adapter.sessionOpened(sid)
    /** What s1 gets into its tail, in order (appended there too). */
    const tail: unknown[] = []
    socket.handedOff = (text) => {
      tail.push(argOf(text))
      a.adapter.appendHandOff(sid, text)
    }
    expect(await a.adapter.handOff(snapshotOf(sid, 's1', ['r']), 60_000)).toBe(true)
    // a's own 'given', given up and never run, holds the seal at the marker; its probes are lost.
    await givenUpNeverRun(a)

    // Once the seal's wait began (its limit started), the next probe a sends goes, and the stall
    // with it: node-redis writes it in this turn's check phase, before the stall, and Redis sends
    // the note back during it. The wait's limit, started at most a probe's interval (a's
    // requestTimeout) before, runs out during the stall. The probes before, the one sent as the
    // wait begins among them (before its limit starts), stay lost.
    let waiting = false
    const start = markerSettles.start
    const started = vi.spyOn(markerSettles, 'start').mockImplementation((wake) => {
      waiting = true
      return start(wake)
    })
    onTestFinished(() => started.mockRestore())
    let stalled: Promise<boolean> | undefined
    a.lose = (args) => isProbe(args) && !waiting
    a.hold = (args) => {
      if (!isProbe(args)) return undefined
      const reply = a.redis.sendCommand(args)
      stalled ??= stallFromCheckPhase(new Int32Array(new SharedArrayBuffer(8)), MUTE, STALL_MS)
      return reply
    }

    const claim = won(await within(b.adapter.claimSession(sid), 5000, 'the claim'))
    const claimed = b.sockets.add('s1', sid)
    const taking = claim.takeOver(() => b.adapter.addAll('s1', ['s1', 'r']))
    await until(() => stalled !== undefined, 5000, 'the wait at the marker begun, a probe sent')
    await within(stalled!, 5000, 'the stall')
    const taken = await within(taking, 5000, 'the claim answered')
    // Sealed at the limit before the note was read, the tail would be empty: 'given' lost.
    expect(tail).toEqual(['given'])
    expect(taken.complete).toBe(true)
    expect(taken.tail.map(argOf)).toEqual(['given'])
    // The session, taken over, gets what follows there, and 'given' not again.
    b.adapter.broadcast(message('news', ['later']), to(['r']))
    await until(() => claimed.got.includes('later'), 5000, "b's later broadcast at the session")
    expect([...taken.tail.map(argOf), ...claimed.got]).toEqual(['given', 'later'])
  })
})
