// A node's close waits, bounded, for the appends and seals still queued for the tails of the
// sessions it handed off (`TailWrites.settle`). A stall of the node's own thread past that bound,
// while a batch is on its way and the session's last appends and seal wait behind it: Redis
// answers the batch during the stall, and Node runs the timers that ran out meanwhile before it
// reads that answer. The batch behind goes only once the answer is read, and needs a round trip
// of its own: the bound, re-checked, waits once more for a Redis that answered meanwhile, and
// the session's tail is whole. A Redis that answers nothing more still lets the close end. The
// nodes run in this thread, which the test blocks.
import type { SessionClaim } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { within } from '../../server/test/helpers.js'
import { stallFromCheckPhase } from '../../server/test/stall.js'
import { MUTE } from '../../server/test/stall-gate.js'
import { type FakeNode, fakeClusterSuite, snapshotOf, tailBatch } from './handoff-support.js'

/** `a`'s requestTimeout, and so its close's wait for the tails (below `UNDO_AT_CLOSE_MS`). */
const TIMEOUT = 300
/** The stall: well past the close's wait for the tails. */
const STALL_MS = TIMEOUT + 500

/** The wire text of the `i`th event numbered after the snapshot (whose last is 12). */
const text = (i: number) => `[5,${13 + i},"news",[${i}],0]`

describe.skipIf(skipRedisSuites())("a close's wait for the tails while the node's thread stalled", () => {
  const suite = fakeClusterSuite()

  /**
   * Nodes a (closing soon) and b; session `sid` handed off by a. Its first append goes to Redis;
   * as it goes, the session's next append and its seal are queued behind it, a's close begins,
   * and the thread stalls from this turn's check phase: Redis answers the batch during the stall.
   * `later` decides what becomes of the batches after the first (undefined: sent to Redis).
   */
  async function closedInStall(sid: string, later?: (args: string[]) => Promise<unknown> | undefined) {
    const cluster = suite.cluster()
    const a = await cluster.node(undefined, { requestTimeout: TIMEOUT })
    const b = await cluster.node()
    const socket = a.sockets.add('s1', sid)
    a.adapter.addAll('s1', ['s1'])
    await a.adapter.sessionOpened(sid)
    socket.handedOff = (text) => a.adapter.appendHandOff(sid, text)
    expect(await a.adapter.handOff(snapshotOf(sid, 's1'), 60_000)).toBe(true)

    let stalled: Promise<boolean> | undefined
    let closing: Promise<void> | undefined
    let sealing: Promise<void> | undefined
    a.hold = (args) => {
      if (tailBatch(args) === undefined) return undefined
      if (stalled) return later?.(args)
      const reply = a.redis.sendCommand(args)
      queueMicrotask(() => {
        a.adapter.appendHandOff(sid, text(1))
        sealing = a.adapter.sealHandOff(sid, [text(2)])
        closing = a.adapter.close()
      })
      stalled = stallFromCheckPhase(new Int32Array(new SharedArrayBuffer(8)), MUTE, STALL_MS)
      return reply
    }
    a.adapter.appendHandOff(sid, text(0))
    return {
      a,
      b,
      /** Resolves once the stall ended and a's close with it: how long the close took after the stall. */
      closed: async () => {
        for (let i = 0; i < 500 && stalled === undefined; i++) await new Promise((r) => setTimeout(r, 10))
        await within(stalled!, 5000, 'the stall')
        const after = performance.now()
        await within(closing!, 10_000, "a's close")
        await sealing
        return { tookAfterStall: performance.now() - after }
      },
    }
  }

  /** `b` claims `sid` and takes it over: its tail, as b reads it. */
  async function takenOver(b: FakeNode, sid: string) {
    const claim = (await b.adapter.claimSession(sid)) as SessionClaim
    expect(claim).toHaveProperty('takeOver')
    return within(
      claim.takeOver(() => {}),
      8000,
      'the takeover',
    )
  }

  it('writes the appends and the seal queued behind the batch answered in the stall, once each, in order', async () => {
    const sid = 'sid-stalled-tail-settle'
    const { a, b, closed } = await closedInStall(sid)
    await closed()
    // Given up at the bound, the close would drop the append and the seal behind the first
    // batch: the claimer would read [text(0)], incomplete, and its client miss the rest.
    const taken = await takenOver(b, sid)
    expect({ tail: taken.tail, complete: taken.complete }).toEqual({
      tail: [text(0), text(1), text(2)],
      complete: true,
    })
    expect(a.warnings.filter((w) => w.includes("handed-off sessions' tails"))).toEqual([])
  })

  it('still ends when Redis answers nothing after the batch answered in the stall', async () => {
    const sid = 'sid-stalled-tail-silent'
    // Redis answers the first batch (during the stall), then is stopped (SIGSTOP, its
    // connections left open) as the batch behind it goes: it answers nothing more.
    const redis = suite.redis()
    const { a, closed } = await closedInStall(sid, () => {
      redis.freeze()
      return undefined
    })
    const { tookAfterStall } = await closed().finally(() => redis.thaw())
    // The wait once more, then the goodbye's own bound: far below what a wait for the stopped
    // Redis would take (for ever), with a wide margin (no speed target).
    expect(tookAfterStall).toBeLessThan(10 * TIMEOUT)
    expect(a.warnings.filter((w) => w.includes("handed-off sessions' tails"))).toEqual([
      expect.stringContaining(
        "2 append(s) or seal(s) to handed-off sessions' tails were sent and not answered",
      ),
    ])
  })
})
