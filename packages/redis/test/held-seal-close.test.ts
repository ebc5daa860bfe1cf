// A node that closes while a seal waits at a claim marker (for an own broadcast Redis may still
// run, at most 1 s) seals it then, as that wait's limit would: what the session kept aside and
// what never ran go into its tail, its questions are counted, and the claimer gets the tail
// whole. Nothing of it runs after `close()` resolved.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { unheard } from '../../../test/support/unheard.js'
import { within } from '../../server/test/helpers.js'
import { argOf, fakeClusterSuite, message, to } from './handoff-support.js'
import { ask, heldSeal } from './held-seal-scene.js'

describe.skipIf(skipRedisSuites())('a node that closes while a seal waits at a claim marker', () => {
  const suite = fakeClusterSuite()

  it('seals it within close(), and nothing of it runs after', async () => {
    const cluster = suite.cluster()
    // Never sent, behind the broadcast s1 awaits: it goes into the tail at the seal.
    const { a, sid, socket, tail, taking } = await heldSeal(cluster, (a) => {
      a.adapter.broadcast(message('news', ['behind']), to(['r']))
    })
    // Only a asks it: kept aside for s1 (out of its rooms), asked of a's witness s2 now.
    const local = ask(a, 'local', ['r'], true)
    expect(local.count).toBe(undefined)
    // The wait still runs (its limit is run out by hand, and never here): the seal has not gone.
    expect(a.sockets.claims).toEqual([])

    const left = await unheard(async () => {
      await within(cluster.stop(a), 5000, "a's close")
      // Within close(): the seal went, with what never ran and the question kept aside, which
      // is counted (s1 and s2) and answered.
      expect(a.sockets.claims).toEqual([sid])
      expect(tail).toEqual(['behind', 'local'])
      expect(local.count).toBe(2)
      expect(local.replies).toHaveLength(2)

      // After it, nothing reaches the session or the question here any more.
      const late: string[] = []
      socket.handedOff = (text) => late.push(text)
      const warned = a.warnings.length
      const taken = await within(taking, 5000, 'the claim answered')
      expect(taken.complete).toBe(true)
      expect(taken.tail.map(argOf)).toEqual(['behind', 'local'])
      expect(late).toEqual([])
      expect(a.sockets.claims).toEqual([sid])
      expect(local.replies).toHaveLength(2)
      expect(a.warnings.slice(warned)).toEqual([])
    })
    expect(left).toEqual([])
  })
})
