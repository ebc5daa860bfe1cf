// An own broadcast emitted while a seal waits at a claim marker, whose PUBLISH never went (Redis
// out of reach), waits behind the one the seal waits for, which Redis may still run. No claimer
// reads it: should the seal go with that one still unsettled (its limit, or the node's close),
// it goes into the tail all the same, in the order it was emitted among what the session kept
// aside meanwhile, not lost with the wait.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { unheard } from '../../../test/support/unheard.js'
import { within } from '../../server/test/helpers.js'
import { argOf, fakeClusterSuite, message, to } from './handoff-support.js'
import { ask, heldSeal } from './held-seal-scene.js'

describe.skipIf(skipRedisSuites())('an own broadcast never sent while a seal waits at its marker', () => {
  const suite = fakeClusterSuite()

  /** The held seal, and `after` emitted on a past the marker with a's link down: never sent. */
  async function behindTheWait() {
    const cluster = suite.cluster()
    const scene = await heldSeal(cluster, (a) => {
      a.adapter.broadcast(message('news', ['before']), to(['r']))
    })
    const { a, witness } = scene
    const lost = a.adapter.stats.lostBroadcasts
    // Local ones around it, kept aside for s1 (out of its rooms): no claimer reads those either.
    a.adapter.broadcast(message('news', ['local-before']), to(['r'], true))
    a.down = true
    a.adapter.broadcast(message('news', ['after']), to(['r']))
    a.down = false
    a.adapter.broadcast(message('news', ['local-after']), to(['r'], true))
    expect(a.adapter.stats.lostBroadcasts).toBe(lost + 1)
    // a's other socket took them when they were emitted.
    expect(witness.got).toEqual(expect.arrayContaining(['local-before', 'after', 'local-after']))
    return { cluster, ...scene }
  }

  it('goes into the tail when the wait ends at its limit', async () => {
    const { sid, a, tail, taking, limit } = await behindTheWait()
    const left = await unheard(async () => {
      limit.runOut()
      const taken = await within(taking, 5000, 'the claim answered')
      expect(a.sockets.claims).toEqual([sid])
      expect(tail).toEqual(['before', 'local-before', 'after', 'local-after'])
      expect(taken.complete).toBe(true)
      expect(taken.tail.map(argOf)).toEqual(['before', 'local-before', 'after', 'local-after'])
    })
    expect(left).toEqual([])
  })

  it('goes into the tail when the node closes during the wait, a question too', async () => {
    const { cluster, sid, a, tail, taking } = await behindTheWait()
    // A question never sent either, behind those: asked of a's other socket at once, of s1 at
    // the seal, into its tail, and counted for both.
    a.down = true
    const asked = ask(a, 'asked', ['r'])
    a.down = false
    const left = await unheard(async () => {
      await within(cluster.stop(a), 5000, "a's close")
      expect(a.sockets.claims).toEqual([sid])
      const whole = ['before', 'local-before', 'after', 'local-after', 'asked']
      expect(tail).toEqual(whole)
      expect(asked.count).toBe(2)
      expect(asked.replies).toHaveLength(2)
      const taken = await within(taking, 5000, 'the claim answered')
      expect(taken.complete).toBe(true)
      expect(taken.tail.map(argOf)).toEqual(whole)
    })
    expect(left).toEqual([])
  })
})
