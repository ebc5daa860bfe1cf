// A seal held at a claim marker for an own broadcast given up that Redis never ran (see
// held-seal-scene.ts), and a stall of the node's own thread past the seal's limit
// (`MARKER_SETTLE_MS`). Node runs the timers that ran out during the stall before it reads the
// subscriber. The limit's verdict waits one turn: the note that proves the broadcast never ran,
// sent back during the stall, is read first, and the broadcast goes into the tail before the seal
// (sealed at the limit first, the session handed off would miss it). And the server's settle of
// the session (`settleHandOff`, its bound run out in the same stall) waits as long, so that the
// seal at the marker, due first, still takes the session. The nodes run in this thread, which the
// test blocks.
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { stallFromCheckPhase } from '../../server/test/stall.js'
import { MUTE } from '../../server/test/stall-gate.js'
import { MARKER_SETTLE_MS, markerSettles } from '../src/handing-off.js'
import { argOf, type FakeNode, fakeClusterSuite, message, snapshotOf, to, won } from './handoff-support.js'
import { givenUpNeverRun } from './held-seal-scene.js'
import { isProbe } from './published.js'

/** The stall: well past the seal's limit. */
const STALL_MS = MARKER_SETTLE_MS + 500

/** Stalls this thread `STALL_MS` from this turn's check phase. */
const stall = () => stallFromCheckPhase(new Int32Array(new SharedArrayBuffer(8)), MUTE, STALL_MS)

describe.skipIf(skipRedisSuites())("a seal held at a claim marker while the node's thread stalled", () => {
  const suite = fakeClusterSuite()

  /**
   * Socket s1's session `sid` on a, in room 'r', handed off; a's own 'given', given up and never
   * run, its probes lost; b's claim won and its takeover begun. `waiting()` tells once a read the
   * marker and its seal's wait began (its limit started).
   */
  async function heldAtMarker(sid: string) {
    const cluster = suite.cluster()
    // a gives its own broadcast up soon.
    const a = await cluster.node(undefined, { requestTimeout: 300 })
    const b = await cluster.node()
    await until(() => [a, b].every((node) => node.adapter.liveNodes.length === 1), 5000, 'live nodes')
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
    await givenUpNeverRun(a)

    let waiting = false
    const start = markerSettles.start
    const started = vi.spyOn(markerSettles, 'start').mockImplementation((wake) => {
      waiting = true
      return start(wake)
    })
    onTestFinished(() => started.mockRestore())
    const claim = won(await within(b.adapter.claimSession(sid), 5000, 'the claim'))
    const claimed = b.sockets.add('s1', sid)
    const taking = claim.takeOver(() => b.adapter.addAll('s1', ['s1', 'r']))
    return { a, b, tail, claimed, taking, waiting: () => waiting }
  }

  /** Once the seal's wait began, the next probe of `node` goes, and the stall with it. */
  function stallAtNextProbe(node: FakeNode, waiting: () => boolean): () => Promise<boolean> | undefined {
    let stalled: Promise<boolean> | undefined
    node.lose = (args) => isProbe(args) && !waiting()
    node.hold = (args) => {
      if (!isProbe(args)) return undefined
      const reply = node.redis.sendCommand(args)
      stalled ??= stall()
      return reply
    }
    return () => stalled
  }

  it('gives the tail the broadcast whose note came in time, once, in order', async () => {
    const { a, b, tail, claimed, taking, waiting } = await heldAtMarker('sid-stalled-marker')
    // node-redis writes the probe in this turn's check phase, before the stall, and Redis sends
    // the note back during it. The seal's limit, started at most a probe's interval (a's
    // requestTimeout) before, runs out during the stall. The probes before, the one sent as the
    // wait begins among them (before its limit starts), stay lost.
    const stalled = stallAtNextProbe(a, waiting)
    await until(() => stalled() !== undefined, 5000, 'the wait at the marker begun, a probe sent')
    await within(stalled()!, 5000, 'the stall')
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

  it("seals at the marker before the server's settle of the session ends, both run out in the stall", async () => {
    const sid = 'sid-stalled-settle-at-marker'
    const { a, tail, taking, waiting } = await heldAtMarker(sid)
    await until(waiting, 5000, 'the wait at the marker begun')
    // The drain ends meanwhile, the session unclaimed as far as the server knows: it settles it
    // for as long as the seal's limit, which started first, and stalls at once. No probe comes
    // back: only the limits end the waits.
    const claimedAtSettle = a.adapter.settleHandOff(sid, MARKER_SETTLE_MS).then(() => [...a.sockets.claims])
    await within(stall(), 5000, 'the stall')
    // Ended first, the settle would leave the server to take the last packets and seal the
    // session as nobody's, the claim not yet told: [].
    expect(await within(claimedAtSettle, 5000, 'the settle')).toEqual([sid])
    const taken = await within(taking, 5000, 'the claim answered')
    expect(taken.complete).toBe(true)
    expect(tail).toEqual([])
  })
})
