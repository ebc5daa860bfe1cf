// A seal held at a claim marker for an own broadcast Redis may still run, its write then given up
// by the server (the session goes on on its node), and its wait ended by its limit with that
// broadcast still unsettled. What the socket kept aside meanwhile reaches it then; this node's
// own that never ran, emitted before those and waiting behind the unsettled one, must reach it
// first, in the order they were emitted, and once.
import { describe, expect, it } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { until, within } from '../../server/test/helpers.js'
import { fakeClusterSuite, message, to } from './handoff-support.js'
import { heldSeal } from './held-seal-scene.js'

describe.skipIf(skipRedisSuites())('a seal held at a claim marker, its write given up, at its limit', () => {
  const suite = fakeClusterSuite()

  it('gives the kept session what never ran before what it kept aside', async () => {
    // 'before': never sent, behind 'given' (which may still run), emitted before the marker.
    const { a, sid, tail, taking, limit } = await heldSeal(suite.cluster(), (node) => {
      node.adapter.broadcast(message('news', ['before']), to(['r']))
    })
    // Past the marker, kept aside with c's 'other': 'after', never sent either.
    a.down = true
    a.adapter.broadcast(message('news', ['after']), to(['r']))
    a.down = false
    expect(tail).toEqual([])

    // The server gives the write up: the session goes on on a, and its wait ends at its limit,
    // 'given' still unsettled (every probe lost).
    await within(a.adapter.withdrawHandOff(sid), 5000, 'the write given up')
    limit.runOut()
    await within(taking, 5000, 'the claim answered')
    expect(tail).toEqual(['before', 'other', 'after'])

    // A later own one, back, proves 'given' never ran: it reaches the session then (its fate
    // unknown until now, it could not go ahead), and 'before' and 'after' are not given again.
    a.adapter.broadcast(message('news', ['proof']), to(['r']))
    await until(() => tail.includes('proof'), 5000, "a's later own broadcast at the session")
    expect(tail).toEqual(['before', 'other', 'after', 'given', 'proof'])
  })
})
